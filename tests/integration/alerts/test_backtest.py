"""A backtest over recorded events fires exactly where live processing of the same events fired,
and notifies and stores nothing."""

from __future__ import annotations

import asyncio

import pytest

from api.alerts import InvalidAlertError

from .conftest import make_event

pytestmark = pytest.mark.integration
QUIET = [
    "Welcome to the lobby",
    "",
    "Opening hours 9-17",
    "Wet floor",
    "Coffee 2 EUR",
    "Please keep your ticket",
]
ALARMS = {
    "north": {3: "EVACUATE NOW", 12: "EVACUATE NOW", 14: "Evacuate calmly, do not run", 19: "EVACUATE NOW"},
    "south": {5: "EVACUATION ROUTE", 13: "EVACUATE NOW", 17: "EVACUATE NOW"},
}


def text(stream: str, n: int) -> str:
    return ALARMS[stream].get(n, QUIET[(n + len(stream)) % len(QUIET)])


def key(firings):
    return [
        (f.event_id, f.channel, round(f.score, 6), round(f.evidence.text_threshold or 0, 6)) for f in firings
    ]


async def live_and_recorded(make_engine, bank, llm_dim, cooldown_s: float):
    engine = make_engine(verifier=None, scoring={"min_samples": 8})
    await engine.start(follow=False)
    alert = engine.define({"query": "an order to evacuate", "cooldown_s": cooldown_s})
    for stream in ("north", "south"):
        bank.register_stream(stream)
    live = []
    for i in range(44):  # the two streams interleaved, as live events arrive
        stream = ("north", "south")[i % 2]
        n = i // 2
        bank.add(make_event(stream, n, 4.0 * n, text(stream, n), llm_dim=llm_dim))
        live += await engine.process_event(f"{stream}:{n}")
    return engine, alert, live


async def test_backtest_fires_where_live_fired(make_engine, bank, llm_dim):
    engine, alert, live = await live_and_recorded(make_engine, bank, llm_dim, cooldown_s=10.0)
    # in warm-up (north:3, south:5), calibrated (north:12, 19, south:13, 17), in cooldown (north:14)
    assert sorted(f.event_id for f in live) == [
        "north:12",
        "north:19",
        "north:3",
        "south:13",
        "south:17",
        "south:5",
    ]
    stored = len(engine.firings(alert.id, limit=1000))
    sub = engine.subscribe()
    recorded = await engine.backtest(alert.id)
    by_stream = sorted(live, key=lambda f: (f.stream_id, f.start_pts_s))
    assert key(recorded) == key(by_stream)
    assert all(f.is_backtest and f.state == "new" for f in recorded)
    spec = alert.model_dump(exclude={"id", "created_s", "updated_s"})
    assert key(await engine.backtest(spec)) == key(by_stream)  # an unsaved definition: the same
    assert key(await engine.backtest(alert.id, streams=["south"])) == key(
        f for f in by_stream if f.stream_id == "south"
    )
    await asyncio.sleep(0.05)
    assert len(engine.firings(alert.id, limit=1000)) == stored  # nothing stored ...
    assert sub._queue.empty()  # ... nor notified
    await engine.stop()


async def test_a_backtest_window_is_warmed_on_the_events_before_it(make_engine, bank, llm_dim):
    engine, alert, live = await live_and_recorded(make_engine, bank, llm_dim, cooldown_s=0.0)
    since, until = 40.0, 72.0  # events 10..17 of each stream: 9 starts at 36 s and ends at 40 s (excluded)
    recorded = await engine.backtest(alert.id, since=since, until=until)
    expected = sorted(
        (f for f in live if since <= f.start_pts_s < until), key=lambda f: (f.stream_id, f.start_pts_s)
    )
    assert expected and key(recorded) == key(expected)
    with pytest.raises(InvalidAlertError, match="since must be before until"):
        await engine.backtest(alert.id, since=10.0, until=5.0)
    with pytest.raises(InvalidAlertError, match="unknown streams"):
        await engine.backtest(alert.id, streams=["nowhere"])
    await engine.stop()
