"""A firing's life after the engine stored it: `new` goes out at once, then the VLM verifies in the
background (bounded in time and in how many wait), then `update` carries the verdict and
explanation, then `end` closes it. Nothing here ever delays the `new` message or the engine.

Verdicts: confirmed / rejected from the verifier; unverified when there is none to ask in time
(timed out, failed, or too many waiting). Without a verifier (or with verification off for the
alert) a firing goes straight from `new` to `end`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Literal

from compressor.records import Event

from .config import VerifySettings
from .models import Alert, AlertMessage, Firing, FiringState, Verdict
from .notifiers import Dispatcher
from .store import AlertStore
from .verify import Verifier, VerifierResult

log = logging.getLogger(__name__)
_STATE_OF: dict[Verdict, FiringState] = {
    "confirmed": "verified",
    "rejected": "rejected",
    "unverified": "unverified",
}


class FiringLifecycle:
    def __init__(
        self, store: AlertStore, dispatcher: Dispatcher, settings: VerifySettings, verifier: Verifier | None
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.verifier = verifier
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._tasks: set[asyncio.Task[None]] = set()
        self.verified = 0
        self.unverified = 0

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def announce(self, alert: Alert, firing: Firing, event: Event) -> None:
        """Send `new` now and schedule verification and closing."""
        self.dispatcher.dispatch(alert, _message("new", alert, None, firing))
        if self.verifier is None or not (alert.verify and self.settings.enabled):
            task = asyncio.create_task(self._close(alert, firing), name=f"end {firing.id}")
        elif len(self._tasks) >= self.settings.max_pending:
            why = f"verifier busy: {len(self._tasks)} candidates already waiting"
            task = asyncio.create_task(
                self._finish(alert, firing, "unverified", why), name=f"skip {firing.id}"
            )
        else:
            task = asyncio.create_task(self._verify(alert, firing, event), name=f"verify {firing.id}")
        self._track(task)

    def resume(self, alert: Alert, firing: Firing) -> None:
        """Close a firing that a previous run left open: unverified if it never got a verdict."""
        if firing.state == "new":
            why = "the engine stopped before verifying this candidate"
            coro = self._finish(alert, firing, "unverified", why)
        else:
            coro = self._close(alert, firing)
        self._track(asyncio.create_task(coro, name=f"resume {firing.id}"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _verify(self, alert: Alert, firing: Firing, event: Event) -> None:
        assert self.verifier is not None
        verifier = self.verifier
        cancel = threading.Event()

        async def run() -> VerifierResult:
            async with self._slots:
                return await asyncio.to_thread(verifier.verify, event, alert.query, cancel)

        timeout_s = self.settings.timeout_s
        verdict: Verdict
        try:
            result = await asyncio.wait_for(run(), timeout_s)
            verdict, explanation = result.verdict, result.explanation
            self.verified += 1
        except TimeoutError:
            cancel.set()  # stops the explanation's decoding at its next token
            verdict, explanation = "unverified", f"verifier gave no verdict within {timeout_s:g} s"
        except Exception as exc:  # any model failure becomes a verdict, never a lost firing
            log.warning("alert %s: verifying event %s failed: %s", alert.id, firing.event_id, exc)
            verdict, explanation = "unverified", f"verifier failed: {type(exc).__name__}: {exc}"
        await self._finish(alert, firing, verdict, explanation)

    async def _finish(self, alert: Alert, firing: Firing, verdict: Verdict, explanation: str) -> None:
        if verdict == "unverified":
            self.unverified += 1
        now = time.time()
        updated = firing.model_copy(
            update={
                "state": _STATE_OF[verdict],
                "verdict": verdict,
                "explanation": explanation,
                "updated_s": now,
            }
        )
        await self._save(updated)
        self.dispatcher.dispatch(alert, _message("update", alert, firing, updated))
        await self._close(alert, updated)

    async def _close(self, alert: Alert, firing: Firing) -> None:
        now = time.time()
        ended = firing.model_copy(update={"state": "ended", "ended_s": now, "updated_s": now})
        await self._save(ended)
        self.dispatcher.dispatch(alert, _message("end", alert, firing, ended))

    async def _save(self, firing: Firing) -> None:
        try:
            await asyncio.to_thread(self.store.update_firing, firing)
        except Exception as exc:  # the message still goes out; the stored copy lags
            log.warning("alert %s: could not store firing %s: %s", firing.alert_id, firing.id, exc)

    async def drain(self, timeout_s: float) -> None:
        """Wait for every firing in flight to end (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _message(
    kind: Literal["new", "update", "end"], alert: Alert, before: Firing | None, after: Firing
) -> AlertMessage:
    return AlertMessage(
        type=kind, alert_id=alert.id, alert_name=alert.title, before=before, after=after, sent_s=time.time()
    )
