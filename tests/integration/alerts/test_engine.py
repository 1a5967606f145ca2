"""The engine on real Redis, a real memory bank and real MiniLM: per-stream calibration, cooldowns
that survive restarts, resuming from the stored stream position without duplicates, and backtests
that fire exactly where live processing fired."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.alerts.calibration import ScoreWindow
from api.alerts.decision import thresholds
from memory import MemoryBank

from .conftest import RedisServer, make_event, memory_settings

pytestmark = pytest.mark.integration
QUERY = "an order to evacuate"
PROBE = "EVACUATE NOW"
LOBBY = [
    "Welcome to the lobby",
    "Opening hours 9-17",
    "",
    "Please keep your ticket",
    "Coffee 2 EUR",
    "Wet floor",
]
DRILLS = ["Evacuation drill every Monday 10:00", "EVACUATION ROUTE", "In case of fire evacuate via stairs",
          "Evacuate calmly, do not run", "Fire assembly point"]  # fmt: skip


async def test_the_same_score_fires_on_a_quiet_stream_but_not_where_such_scores_are_usual(
    make_engine, bank, llm_dim
):
    engine = make_engine(verifier=None)
    await engine.start(follow=False)
    alert = engine.define({"query": QUERY, "cooldown_s": 0})
    for stream, texts in (("lobby", LOBBY), ("drills", DRILLS)):
        bank.register_stream(stream)
        for i in range(30):
            bank.add(make_event(stream, i, 4.0 * i, texts[i % len(texts)], llm_dim=llm_dim))
            await engine.process_event(f"{stream}:{i}")
    before = {f.event_id for f in engine.firings(alert.id, limit=1000)}
    for stream in ("lobby", "drills"):
        bank.add(make_event(stream, 30, 120.0, PROBE, llm_dim=llm_dim))
    (fired,) = await engine.process_event("lobby:30")
    assert await engine.process_event("drills:30") == []
    assert fired.channel == "text" and fired.evidence.calibration_samples == 30
    (raw,) = engine.scorer.score(bank.get_event("drills:30").embedding, PROBE, engine.scorer.prepare([QUERY]))
    assert raw.text_score == pytest.approx(fired.evidence.text_score)  # the very same raw score on both
    window = ScoreWindow(1000, engine.store.window(alert.id, "drills")[:-1])  # as before the probe
    _, drills = thresholds(window, engine.settings.scoring)
    assert fired.evidence.text_threshold < raw.text_score < drills.value
    assert not any(e.startswith("lobby") for e in before)  # lobby texts never fired
    await engine.stop()


async def test_restart_resumes_from_the_stored_position_without_duplicates(
    make_engine, tmp_path, prefix, llm_dim
):
    server = RedisServer(tmp_path / "redis")
    server.start()
    bank = MemoryBank(memory_settings(prefix), data_dir=tmp_path / "data", redis_url=server.url)
    try:
        bank.register_stream("cam")
        texts = ["Platform 2", PROBE, "Wet floor", PROBE, "Coffee 2 EUR"]  # probes at 4 s and 12 s
        first = make_engine(url=server.url, memory=bank, verifier=None, follow_block_ms=50)
        await first.start()
        alert = first.define({"query": QUERY, "cooldown_s": 25})
        for i, text in enumerate(texts):
            bank.add(make_event("cam", i, 4.0 * i, text, llm_dim=llm_dim))
        await wait_until(lambda: first.events_judged == 5)
        assert [f.event_id for f in first.firings(alert.id)] == ["cam:1"]  # cam:3 is in cam:1's cooldown
        await first.stop()

        server.stop()  # Redis restarts too (AOF): the engine's state must survive it
        server.start()
        for i, text in enumerate(texts, start=5):  # probes at 24 s (in cooldown) and 32 s (after it)
            bank.add(make_event("cam", i, 4.0 * i, text, llm_dim=llm_dim))
        second = make_engine(url=server.url, memory=bank, verifier=None, follow_block_ms=50)
        await second.start()
        await wait_until(lambda: second.events_judged == 5)
        await asyncio.sleep(0.3)  # nothing more arrives: pins of evidence are entries, not events
        assert second.events_judged == 5  # only the events added while no engine ran
        # the cooldown started by cam:1 came back from Redis: cam:6 (20 s later) is in it, cam:8 (28 s) not
        assert [f.event_id for f in second.firings(alert.id)] == ["cam:8", "cam:1"]
        for event_id in ("cam:1", "cam:3", "cam:8"):  # judged again (a re-delivered entry): no change
            assert await second.process_event(event_id) == []
        assert len(second.firings(alert.id)) == 2
        await second.stop()
    finally:
        bank.close(snapshot=False)
        server.stop()


async def wait_until(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_definitions_persist_and_a_changed_query_restarts_calibration(make_engine, bank, llm_dim):
    from api.alerts import AlertNotFoundError, InvalidAlertError

    engine = make_engine(verifier=None)
    await engine.start(follow=False)
    hooks = [{"url": "http://127.0.0.1:9/x", "secret": "s" * 16}]
    alert = engine.define(
        {"name": "evac", "query": QUERY, "streams": ["cam"], "channels": {"webhooks": hooks}}
    )
    bank.register_stream("cam")
    for i in range(3):
        bank.add(make_event("cam", i, 4.0 * i, "Wet floor", llm_dim=llm_dim))
        await engine.process_event(f"cam:{i}")
    assert len(engine.store.window(alert.id, "cam")) == 3

    again = make_engine(verifier=None)  # a new process sees the same definitions, secrets intact
    (loaded,) = again.list()
    assert loaded == alert and loaded.channels.webhooks[0].secret.get_secret_value() == "s" * 16
    same = again.define({"id": alert.id, "name": "renamed", "query": QUERY, "streams": ["cam"]})
    assert same.created_s == alert.created_s and len(again.store.window(alert.id, "cam")) == 3
    changed = again.define({"id": alert.id, "query": "a person falling"})
    assert changed.query == "a person falling" and again.store.window(alert.id, "cam") == []

    again.delete(alert.id)
    assert again.list() == [] and again.firings() == []
    with pytest.raises(AlertNotFoundError, match=f"no alert '{alert.id}'"):
        again.get(alert.id)
    with pytest.raises(InvalidAlertError, match="query"):
        again.define({"query": ""})
    with pytest.raises(InvalidAlertError, match="limit must be"):
        again.firings(limit=0)
