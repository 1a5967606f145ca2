"""Faults the engine must survive: stopped while verifying (the firing is closed on the next start),
and an event that cannot be read (skipped after a few tries, so it cannot stop every alert)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from api.alerts import LLMVerifier, VerifySettings

from .conftest import make_event
from .test_verification import GatedVerifier

pytestmark = pytest.mark.integration


async def test_a_firing_left_open_by_a_stop_is_closed_as_unverified_on_the_next_start(
    make_engine, bank, tiny_runner, llm_dim
):
    verifier = GatedVerifier(LLMVerifier(tiny_runner, VerifySettings()))
    first = make_engine(verifier=verifier)
    await first.start(follow=False)
    alert = first.define({"query": '"evacuate now"'})
    bank.register_stream("cam")
    bank.add(make_event("cam", 0, 0.0, "EVACUATE NOW", llm_dim=llm_dim))
    (firing,) = await first.process_event("cam:0")
    await asyncio.to_thread(verifier.started.wait, 5)
    await first.stop()  # verification abandoned
    verifier.gate.set()
    assert first.firings(alert.id)[0].state == "new"

    second = make_engine(verifier=None)
    live = second.subscribe()
    await second.start(follow=False)
    update, end = [await asyncio.wait_for(anext(live), 5) for _ in range(2)]
    assert update.type == "update" and update.after.verdict == "unverified"
    assert "stopped before verifying" in update.after.explanation
    assert end.type == "end" and second.firings(alert.id)[0].state == "ended"
    assert second.firings(alert.id)[0].id == firing.id


async def test_an_unreadable_event_is_skipped_after_a_few_tries(make_engine, bank, llm_dim, caplog):
    bank.register_stream("cam")
    for i in range(3):
        bank.add(make_event("cam", i, 4.0 * i, "EVACUATE NOW", llm_dim=llm_dim))
    writer = bank.writer_for("cam")
    writer.blobs.blob_path(writer.event_row("cam:1").fid).write_bytes(b"not a safetensors file")
    engine = make_engine(verifier=None, follow_block_ms=50)
    engine.store.set_cursor("0-0")  # judge the bank's stream from its start
    alert = engine.define({"query": '"evacuate now"', "cooldown_s": 0})
    with caplog.at_level(logging.WARNING, logger="api.alerts.engine"):
        await engine.start()
        deadline = time.monotonic() + 15
        while engine.events_judged < 2:
            assert time.monotonic() < deadline, "the follower is stuck on the unreadable event"
            await asyncio.sleep(0.05)
    assert sorted(f.event_id for f in engine.firings(alert.id)) == ["cam:0", "cam:2"]
    assert any("skipping event cam:1 after 3 failures" in r.getMessage() for r in caplog.records)
