import numpy as np
import pytest

from api.alerts.calibration import Sample, ScoreWindow, outlier_threshold

KW = dict(k=4.0, min_spread=0.05, min_samples=20, floor=0.5, warmup_floor=0.7)


def test_a_quiet_stream_needs_only_the_floor():
    thr = outlier_threshold([0.0] * 100, **KW)
    assert thr.is_warm and thr.value == pytest.approx(0.5)


def test_a_stream_whose_scores_are_always_high_needs_more_than_its_usual():
    usual = np.random.default_rng(0).normal(0.8, 0.02, 200)
    thr = outlier_threshold(usual, **KW)
    assert thr.value > usual.max()
    assert thr.value == pytest.approx(
        np.median(usual) + 4 * max(0.05, 1.4826 * np.median(np.abs(usual - np.median(usual))))
    )


def test_a_burst_of_alarms_does_not_raise_the_bar():
    thr = outlier_threshold([0.0] * 90 + [0.95] * 10, **KW)  # median and MAD ignore a 10% burst
    assert thr.value == pytest.approx(0.5)


def test_warm_up_applies_only_the_stricter_floor():
    thr = outlier_threshold([0.0] * 19, **KW)
    assert not thr.is_warm and thr.value == 0.7 and thr.samples == 19


def test_window_keeps_the_last_events_and_forgets_evicted_ids():
    w = ScoreWindow(3)
    for i in range(5):
        w.add(Sample(f"e{i}", None, i / 10))
    assert len(w) == 3 and "e1" not in w and "e4" in w
    assert w.text() == [0.2, 0.3, 0.4]
    assert w.visual() == []


def test_events_without_text_count_as_zero_text_score():
    w = ScoreWindow(10, [Sample("a", 1.5, None), Sample("b", None, 0.6)])
    assert w.text() == [0.0, 0.6] and w.visual() == [1.5]


def test_samples_round_trip_through_their_stored_form():
    s = Sample("ev-1", -3.25, None)
    assert Sample.from_list(s.as_list()) == s
