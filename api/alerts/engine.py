"""The alert engine: standing queries judged against every new event of the memory bank.

    engine = AlertEngine(settings.alerts, redis=url, memory=bank, embed_text=retrieval_encoder,
                         embed_passage=text_embedder, verifier=LLMVerifier(runner, settings.alerts.verify))
    await engine.start()                     # follows the bank's new-event stream
    alert = engine.define({"query": 'a sign saying "evacuate now"', "channels": {...}})
    async for message in engine.subscribe(): ...   # new / update / end (/ dropped)

Per event: load it, score it against every enabled alert watching its stream (scoring.py), decide
per alert with the stream's own calibration (decision.py), store everything the event changed
plus the stream position in one Redis transaction (store.py), then pin the evidence and hand each
firing to its lifecycle (new now, verify, update, end). Events are judged one at a time in stream
order, so calibration windows and cooldowns see them in order.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import redis as redis_lib

from compressor.records import Event
from memory.errors import BankClosedError, MemoryBankError, StoreUnavailableError, UnknownEventError
from memory.records import StreamEntry

from .backtest import run_backtest
from .calibration import ScoreWindow
from .config import AlertSettings
from .decision import EventView, StreamState, judge
from .errors import AlertNotFoundError, AlertStoreError, EngineStateError, InvalidAlertError
from .hub import AlertHub, Subscription
from .lifecycle import FiringLifecycle
from .models import Alert, AlertSpec, Firing
from .notifiers import Dispatcher, MqttNotifier, Notifier, WebhookNotifier, WebSocketNotifier
from .scoring import PassageEmbedder, PreparedQuery, Scorer, VisualTextEncoder
from .source import MemoryLike, stream_tip
from .store import AlertStore, Judged, connect
from .verify import Verifier

log = logging.getLogger(__name__)
_RETRY_S = (0.5, 1.0, 2.0, 5.0)
_MAX_EVENT_FAILURES = 3
_TRANSIENT = (StoreUnavailableError, BankClosedError)  # the bank is away: wait for it, never skip


def as_passage_embedder(embedder: Any) -> PassageEmbedder | None:
    """A callable texts -> [N, D], from a callable or an object with `encode` (encoder.text.TextEmbedder)."""
    if embedder is None or callable(embedder):
        return embedder
    if hasattr(embedder, "encode"):
        return embedder.encode  # type: ignore[no-any-return]
    raise InvalidAlertError(
        f"embed_passage must be callable or have encode(texts), got {type(embedder).__name__}"
    )


class AlertEngine:
    def __init__(
        self,
        settings: AlertSettings,
        *,
        redis: str | redis_lib.Redis,
        memory: MemoryLike,
        embed_text: VisualTextEncoder | None,
        embed_passage: PassageEmbedder | Any | None = None,
        verifier: Verifier | None = None,
        notifiers: Sequence[Notifier] | None = None,
    ) -> None:
        self.settings = settings
        self.memory = memory
        self.store = AlertStore(connect(redis), settings.redis_key_prefix,
                                window_events=settings.scoring.window_events,
                                max_firings=settings.max_firings_per_alert)  # fmt: skip
        self.scorer = Scorer(settings.scoring, embed_text, as_passage_embedder(embed_passage))
        self.hub = AlertHub(settings.subscriber_queue)
        if notifiers is None:
            notifiers = [WebhookNotifier(settings.webhook)]
            if settings.mqtt.host:
                notifiers.append(MqttNotifier(settings.mqtt))
        self.dispatcher = Dispatcher([*notifiers, WebSocketNotifier(self.hub)])
        self.lifecycle = FiringLifecycle(self.store, self.dispatcher, settings.verify, verifier)
        self._cache_lock = threading.Lock()  # alerts and states are read in worker threads
        self._alerts: dict[str, Alert] = self.store.alerts()
        self._prepared: dict[str, PreparedQuery] = {}
        self._states: dict[tuple[str, str], StreamState] = {}
        self._process_lock = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None
        self._started = False
        self.cursor: str | None = None
        self._entry_failures: tuple[str | None, int] = (None, 0)
        self.events_judged = 0

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self, *, follow: bool = True) -> None:
        """Start the channels and (follow=True) the follower of the bank's new-event stream, from the
        stored position (or, the first time, from now)."""
        if self._started:
            raise EngineStateError("the alert engine is already started")
        self._started = True
        await self.dispatcher.start()
        self.cursor = await asyncio.to_thread(self.store.cursor)
        if self.cursor is None:
            self.cursor = await asyncio.to_thread(stream_tip, self.memory)
            if self.cursor is not None:
                await asyncio.to_thread(self.store.set_cursor, self.cursor)
        await self._close_orphans()
        if follow:
            self._follower = asyncio.create_task(self._follow(), name="alert follower")

    async def _close_orphans(self) -> None:
        """Firings a previous run left open (stopped while verifying) are closed as unverified."""
        recent = await asyncio.to_thread(self.store.firings, None, 1000)
        for firing in recent:
            alert = self._alerts.get(firing.alert_id)
            if firing.state != "ended" and alert is not None:
                self.lifecycle.resume(alert, firing)

    async def stop(self, *, drain_s: float = 0.0) -> None:
        """Stop following, (optionally) let firings in flight end, close channels. Idempotent."""
        if not self._started:
            return
        self._started = False
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
            self._follower = None
        if drain_s > 0:
            await self.lifecycle.drain(drain_s)
        await self.lifecycle.close()
        await self.dispatcher.close()

    async def _follow(self) -> None:
        failures = 0
        while True:
            try:
                entries = await asyncio.to_thread(
                    self.memory.follow, self.cursor or "$", self.settings.follow_block_ms,
                    self.settings.follow_batch,
                )  # fmt: skip
                for entry in entries:
                    await self._follow_entry(entry)
                    failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the bank away: wait and resume from the stored position
                delay = _RETRY_S[min(failures, len(_RETRY_S) - 1)]
                failures += 1
                log.warning("alert follower: %s: %s; retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)

    async def _follow_entry(self, entry: StreamEntry) -> None:
        if entry.op != "add":  # deletes and pins change nothing an alert judges
            await asyncio.to_thread(self.store.set_cursor, entry.entry_id)
            self.cursor = entry.entry_id
            return
        try:
            await self.process_event(entry.event_id, entry_id=entry.entry_id)
            self._entry_failures = (None, 0)
        except (AlertStoreError, MemoryBankError) as exc:
            if isinstance(exc, MemoryBankError) and not isinstance(exc, _TRANSIENT):
                self._skip_if_poison(entry, exc)
            raise  # infrastructure away: retry the same entry, however long it takes
        except Exception as exc:  # a bug or a model failure on this event
            self._skip_if_poison(entry, exc)
            raise

    def _skip_if_poison(self, entry: StreamEntry, exc: Exception) -> None:
        """An event that fails the same way three times is skipped, so it cannot stop every alert."""
        last_id, count = self._entry_failures
        count = count + 1 if last_id == entry.entry_id else 1
        self._entry_failures = (entry.entry_id, count)
        if count >= _MAX_EVENT_FAILURES:
            log.warning("alert follower: skipping event %s after %d failures: %s", entry.event_id, count, exc)
            self.store.set_cursor(entry.entry_id)
            self.cursor = entry.entry_id
            self._entry_failures = (None, 0)

    # --- definitions --------------------------------------------------------------------------
    def define(self, spec: AlertSpec | Mapping[str, Any]) -> Alert:
        """Create an alert, or replace the one with `spec.id`. A changed query restarts calibration."""
        try:
            spec = spec if isinstance(spec, AlertSpec) else AlertSpec.model_validate(spec)
        except ValueError as exc:
            raise InvalidAlertError(f"invalid alert definition: {exc}") from exc
        old = self._alerts.get(spec.id) if spec.id else None
        alert = self._alert_from(spec, spec.id or uuid.uuid4().hex[:12], old)
        prepared = self._prepare(alert)
        is_new_query = old is not None and old.query != alert.query
        if is_new_query:
            self.store.reset_calibration(alert.id)
        self.store.put_alert(alert)
        with self._cache_lock:
            self._alerts[alert.id] = alert
            self._prepared[alert.id] = prepared
            if is_new_query:
                self._states = {k: v for k, v in self._states.items() if k[0] != alert.id}
        return alert

    def _alert_from(self, spec: AlertSpec, alert_id: str, old: Alert | None) -> Alert:
        now = time.time()
        fields = spec.model_dump(exclude={"id", "cooldown_s", "channels"})
        return Alert(
            **fields, channels=spec.channels, id=alert_id,
            cooldown_s=self.settings.default_cooldown_s if spec.cooldown_s is None else spec.cooldown_s,
            created_s=old.created_s if old else now, updated_s=now,
        )  # fmt: skip

    def _prepare(self, alert: Alert) -> PreparedQuery:
        try:
            return self.scorer.prepare([alert.query])[0]
        except Exception as exc:
            raise InvalidAlertError(f"cannot embed the query {alert.query!r}: {exc}") from exc

    def list(self) -> builtins.list[Alert]:
        return sorted(self._alerts.values(), key=lambda a: a.created_s)

    def get(self, alert_id: str) -> Alert:
        alert = self._alerts.get(alert_id)
        if alert is None:
            raise AlertNotFoundError(f"no alert {alert_id!r}; defined: {sorted(self._alerts)[:20]}")
        return alert

    def delete(self, alert_id: str) -> None:
        """Remove the alert, its calibration and its firings (evidence stays pinned in memory)."""
        self.get(alert_id)
        self.store.delete_alert(alert_id)
        with self._cache_lock:
            self._alerts.pop(alert_id, None)
            self._prepared.pop(alert_id, None)
            self._states = {k: v for k, v in self._states.items() if k[0] != alert_id}

    def firings(self, alert_id: str | None = None, limit: int = 100) -> builtins.list[Firing]:
        """Newest first."""
        if alert_id is not None:
            self.get(alert_id)
        if not 1 <= limit <= 10_000:
            raise InvalidAlertError(f"limit must be in [1, 10000], got {limit}")
        return self.store.firings(alert_id, limit)

    def subscribe(self) -> Subscription:
        """Messages of alerts with the websocket channel; a slow reader loses some and is told."""
        return self.hub.subscribe()

    # --- judging ------------------------------------------------------------------------------
    async def process_event(self, event_id: str, *, entry_id: str | None = None) -> builtins.list[Firing]:
        """Judge one stored event against every active alert; returns the firings it caused.
        Judging an event twice changes nothing the second time. entry_id: its position in the
        bank's new-event stream, stored with the result (resume point after a restart)."""
        async with self._process_lock:
            try:
                event = await asyncio.to_thread(self.memory.get_event, event_id)
            except UnknownEventError:  # deleted since it was announced
                if entry_id is not None:
                    await asyncio.to_thread(self.store.set_cursor, entry_id)
                return []
            fired = await asyncio.to_thread(self._judge_event, event, entry_id)
            self.events_judged += 1
            if entry_id is not None:
                self.cursor = entry_id
        for alert, firing in fired:
            await self._pin(firing)
            self.lifecycle.announce(alert, firing, event)
        return [f for _, f in fired]

    def _judge_event(self, event: Event, entry_id: str | None) -> builtins.list[tuple[Alert, Firing]]:
        view = EventView.of(event)
        with self._cache_lock:
            alerts = [a for a in self._alerts.values() if a.enabled and a.watches(view.stream_id)]
        if not alerts:
            self.store.commit([], cursor=entry_id)
            return []
        queries = [self._prepared_for(a) for a in alerts]
        scores = self.scorer.score(view.embedding, view.text, queries)
        judged, fired, now = [], [], time.time()
        states = [self._state(a.id, view.stream_id) for a in alerts]
        for alert, s, state in zip(alerts, scores, states, strict=True):
            j = judge(alert, view, s, state, self.settings.scoring, now_s=now)
            if j.reason == "already processed":
                continue
            last = state.last_fire_s if j.firing is not None else None
            judged.append(Judged(alert.id, view.stream_id, j.sample, j.firing, last))
            if j.firing is not None:
                fired.append((alert, j.firing))
        try:
            self.store.commit(judged, cursor=entry_id)
        except AlertStoreError:
            with self._cache_lock:  # the states moved on in memory only: reload them from Redis
                for a in alerts:
                    self._states.pop((a.id, view.stream_id), None)
            raise
        for alert, _ in fired:
            self.store.trim_firings(alert.id)
        return fired

    def _prepared_for(self, alert: Alert) -> PreparedQuery:
        with self._cache_lock:
            prepared = self._prepared.get(alert.id)
        if prepared is None or prepared.query != alert.query:
            prepared = self._prepare(alert)
            with self._cache_lock:
                self._prepared[alert.id] = prepared
        return prepared

    def _state(self, alert_id: str, stream_id: str) -> StreamState:
        key = (alert_id, stream_id)
        with self._cache_lock:
            state = self._states.get(key)
        if state is None:
            window = ScoreWindow(self.settings.scoring.window_events, self.store.window(alert_id, stream_id))
            state = StreamState(window, self.store.last_fire_s(alert_id, stream_id))
            with self._cache_lock:
                self._states[key] = state
        return state

    async def _pin(self, firing: Firing) -> None:
        try:
            await asyncio.to_thread(self.memory.pin, firing.event_id, True)
        except Exception as exc:  # the firing stands; its evidence is just not protected from retention
            log.warning("alert %s: could not pin evidence %s: %s", firing.alert_id, firing.event_id, exc)

    # --- backtest -----------------------------------------------------------------------------
    async def backtest(
        self,
        alert_id_or_spec: str | AlertSpec | Mapping[str, Any],
        streams: Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> builtins.list[Firing]:
        """What the alert would have fired over the bank's events in [since, until) (each stream on its
        own clock), judged exactly as live, with calibration warmed on the events just before
        `since`. Nothing is stored or notified."""
        if isinstance(alert_id_or_spec, str):
            alert = self.get(alert_id_or_spec)
            prepared = self._prepared_for(alert)
        else:
            spec = alert_id_or_spec
            try:
                spec = spec if isinstance(spec, AlertSpec) else AlertSpec.model_validate(dict(spec))
            except ValueError as exc:
                raise InvalidAlertError(f"invalid alert definition: {exc}") from exc
            alert = self._alert_from(spec, spec.id or "backtest", None)
            prepared = self._prepare(alert)
        return await asyncio.to_thread(
            run_backtest, alert, prepared, self.memory, self.scorer, self.settings.scoring,
            streams=streams, since=since, until=until,
        )  # fmt: skip

    # --- introspection ------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {
            "alerts": len(self._alerts),
            "events_judged": self.events_judged,
            "cursor": self.cursor,
            "verifications_pending": self.lifecycle.pending,
            "verified": self.lifecycle.verified,
            "unverified": self.lifecycle.unverified,
            "subscribers": self.hub.subscribers,
        }
