"""The decision step shared by live alerts and backtests."""

import datetime as dt
import zoneinfo

from api.alerts.calibration import Sample, ScoreWindow
from api.alerts.config import ScoringSettings
from api.alerts.decision import StreamState, firing_id, judge
from api.alerts.models import Alert, Schedule, TimeWindow
from api.alerts.scoring import ChannelScores

from .conftest import view

S = ScoringSettings(min_samples=10, window_events=50)


def alert(**kw) -> Alert:
    base = dict(id="a1", query="evacuate now", cooldown_s=60.0, created_s=0.0, updated_s=0.0)
    return Alert(**{**base, **kw})


def state_with(text_scores: list[float]) -> StreamState:
    return StreamState(ScoreWindow(50, [Sample(f"old{i}", None, s) for i, s in enumerate(text_scores)]))


def test_the_same_raw_score_fires_on_a_quiet_stream_and_not_on_a_busy_one():
    scores = ChannelScores(text_score=0.75, text_cosine=0.75, keyword_overlap=0.5)
    quiet, busy = state_with([0.05] * 30), state_with([0.7, 0.72, 0.74, 0.76] * 8)
    assert judge(alert(), view("e", 100.0, "x"), scores, quiet, S, now_s=0).firing is not None
    j = judge(alert(), view("e", 100.0, "x"), scores, busy, S, now_s=0)
    assert j.firing is None and j.reason == "below threshold"


def test_below_the_absolute_floor_nothing_fires_even_on_a_silent_stream():
    s = ScoringSettings(min_samples=10, text_min_score=0.5, k=0.0, text_min_spread=0.0)
    j = judge(
        alert(), view("e", 1.0, "x"), ChannelScores(text_score=0.45), state_with([0.0] * 30), s, now_s=0
    )
    assert j.firing is None


def test_visual_probability_below_the_floor_never_fires():
    state = StreamState(ScoreWindow(50, [Sample(f"o{i}", -8.0, None) for i in range(30)]))
    weak = ChannelScores(visual_logit=-0.2, visual_probability=0.45)  # an outlier, but below p = 0.5
    assert judge(alert(), view("e", 1.0), weak, state, S, now_s=0).firing is None
    strong = ChannelScores(visual_logit=2.0, visual_probability=0.88)
    fired = judge(alert(), view("f", 2.0), strong, state, S, now_s=0).firing
    assert fired is not None and fired.channel == "visual" and fired.score == 0.88


def test_cooldown_is_per_stream_and_counts_on_the_event_clock():
    hit = ChannelScores(text_score=0.9)
    a, s1, s2 = alert(cooldown_s=60.0), state_with([0.0] * 30), state_with([0.0] * 30)
    fired = [
        judge(a, view(f"e{t}", t, "x"), hit, s1, S, now_s=0).firing is not None
        for t in (0.0, 30.0, 59.0, 61.0)
    ]
    assert fired == [True, False, False, True]
    assert judge(a, view("other", 30.0, "x", stream_id="cam2"), hit, s2, S, now_s=0).firing is not None


def test_events_out_of_schedule_do_not_fire_but_still_calibrate():
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    night = Schedule(timezone="Europe/Berlin", windows=[TimeWindow(start=dt.time(22), end=dt.time(6))])
    noon = dt.datetime(2025, 3, 5, 12, 0, tzinfo=berlin).timestamp()
    state = state_with([0.0] * 30)
    j = judge(
        alert(schedule=night),
        view("e", noon, "x", wall=True),
        ChannelScores(text_score=0.9),
        state,
        S,
        now_s=0,
    )
    assert j.firing is None and j.reason == "out of schedule" and "e" in state.window
    late = dt.datetime(2025, 3, 5, 23, 30, tzinfo=berlin).timestamp()
    j = judge(
        alert(schedule=night),
        view("f", late, "x", wall=True),
        ChannelScores(text_score=0.9),
        state,
        S,
        now_s=0,
    )
    assert j.firing is not None


def test_judging_an_event_twice_changes_nothing_the_second_time():
    state = state_with([0.0] * 30)
    first = judge(alert(), view("e", 1.0, "x"), ChannelScores(text_score=0.9), state, S, now_s=0)
    before = (len(state.window), state.last_fire_s)
    again = judge(
        alert(cooldown_s=0.0), view("e", 1.0, "x"), ChannelScores(text_score=0.9), state, S, now_s=0
    )
    assert first.firing is not None and again.firing is None and again.reason == "already processed"
    assert (len(state.window), state.last_fire_s) == before


def test_firing_ids_are_deterministic_per_alert_and_event():
    assert firing_id("a", "e1") == firing_id("a", "e1") != firing_id("a", "e2") != firing_id("b", "e1")
