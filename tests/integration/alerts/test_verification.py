"""The VLM verifies after the notification, never before it: `new` goes out at once, the verdict
follows in `update`; a slow or failing model gives 'unverified'. The verifier is the real
LLMVerifier on the tiny Qwen2.5-VL; a gate in front of it makes "slow" deterministic."""

from __future__ import annotations

import asyncio
import threading

import pytest

from api.alerts import LLMVerifier, VerifySettings
from llm import LLMSettings, Runner

from .conftest import make_event

pytestmark = pytest.mark.integration


class GatedVerifier:
    """The real verifier, started only when the test opens the gate."""

    def __init__(self, inner: LLMVerifier) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()

    def verify(self, event, query, cancel):
        self.started.set()
        try:
            if not self.gate.wait(30):
                raise RuntimeError("gate never opened")
            return self.inner.verify(event, query, cancel)
        finally:
            self.finished.set()


async def next_of(sub, timeout_s: float = 30.0):
    return await asyncio.wait_for(anext(sub), timeout_s)


async def test_the_notification_goes_out_before_verification_completes(
    make_engine, bank, tiny_runner, llm_dim
):
    verifier = GatedVerifier(LLMVerifier(tiny_runner, VerifySettings(explanation_max_tokens=8)))
    engine = make_engine(verifier=verifier)
    await engine.start(follow=False)
    bank.register_stream("cam")
    alert = engine.define({"query": 'a sign saying "evacuate now"'})
    live = engine.subscribe()
    bank.add(make_event("cam", 0, 0.0, "EVACUATE NOW", llm_dim=llm_dim))
    (firing,) = await engine.process_event("cam:0")
    new = await next_of(live, 5)
    assert new.type == "new" and new.after.id == firing.id
    await asyncio.to_thread(verifier.started.wait, 5)
    assert not verifier.finished.is_set()  # the verifier is still busy: `new` did not wait for it
    assert engine.firings(alert.id)[0].state == "new"
    verifier.gate.set()
    update, end = await next_of(live), await next_of(live)
    assert update.type == "update" and update.after.verdict in ("confirmed", "rejected")
    assert update.after.state == {"confirmed": "verified", "rejected": "rejected"}[update.after.verdict]
    assert end.type == "end" and end.after.state == "ended" and end.after.verdict == update.after.verdict


@pytest.mark.parametrize("problem", ["slow", "failing"])
async def test_a_slow_or_failing_verifier_gives_unverified(make_engine, bank, tiny_runner, llm_dim, problem):
    if problem == "slow":
        verifier = GatedVerifier(LLMVerifier(tiny_runner, VerifySettings()))  # the gate stays shut
        expected = "within 0.3 s"
    else:  # a real failure: the event's tokens do not fit the runner's context
        small = Runner(LLMSettings(**{**tiny_runner.settings.model_dump(), "max_context_tokens": 64}),
                       model=tiny_runner.model)  # fmt: skip
        verifier = LLMVerifier(small, VerifySettings())
        expected = "verifier failed: ContextOverflowError"
    engine = make_engine(verifier=verifier, verify={"timeout_s": 0.3})
    await engine.start(follow=False)
    bank.register_stream("cam")
    engine.define({"query": '"evacuate now"'})
    live = engine.subscribe()
    bank.add(make_event("cam", 0, 0.0, "EVACUATE NOW", llm_dim=llm_dim))
    await engine.process_event("cam:0")
    kinds = [(await next_of(live, 10)) for _ in range(3)]
    if isinstance(verifier, GatedVerifier):
        verifier.gate.set()  # let the abandoned thread finish
    assert [m.type for m in kinds] == ["new", "update", "end"]
    update = kinds[1].after
    assert update.verdict == "unverified" and update.state == "unverified"
    assert expected in update.explanation
    assert kinds[2].after.verdict == "unverified"
