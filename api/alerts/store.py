"""Alert state in Redis: definitions, firings, calibration windows, cooldowns and the position in the
memory's new-event stream.

Everything one event changes (every alert's window sample and firing, cooldowns, the stream
position) is written in one MULTI/EXEC transaction, so a crash leaves either all of it or none:
after a restart the engine resumes from the stored position, and an event it already judged is
not judged again.

Keys (prefix p): p+defs (hash id -> alert JSON), p+firing:<id> (firing JSON), p+firings (zset of
firing ids by creation time), p+firings:<alert> (same, per alert), p+window:<alert>:<stream> (list
of samples, oldest first), p+cooldown:<alert> (hash stream -> last firing time), p+cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from .calibration import Sample
from .errors import AlertStoreError
from .models import REVEAL, Alert, Firing

T = TypeVar("T")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def connect(url_or_client: str | redis.Redis) -> redis.Redis:
    """A client from a URL (redis://, rediss://, unix://) or the client itself."""
    if isinstance(url_or_client, str):
        return redis.Redis.from_url(url_or_client, socket_timeout=5.0, socket_connect_timeout=2.0)
    return url_or_client


@dataclass(frozen=True, slots=True)
class Judged:
    """What one event did to one alert: its window sample, maybe a firing and a new cooldown time."""

    alert_id: str
    stream_id: str
    sample: Sample
    firing: Firing | None = None
    last_fire_s: float | None = None


class AlertStore:
    def __init__(self, client: redis.Redis, prefix: str, *, window_events: int, max_firings: int) -> None:
        self.client = client
        self.p = prefix
        self.window_events = window_events
        self.max_firings = max_firings

    def _call(self, what: str, fn: Callable[[redis.Redis], T]) -> T:
        try:
            return fn(self.client)
        except redis.RedisError as exc:
            raise AlertStoreError(f"Redis failed during {what}: {type(exc).__name__}: {exc}") from exc

    # --- definitions ------------------------------------------------------------------------
    def put_alert(self, alert: Alert) -> None:
        body = alert.model_dump_json(context=REVEAL)
        self._call("save alert", lambda c: c.hset(f"{self.p}defs", alert.id, body))

    def alerts(self) -> dict[str, Alert]:
        raw = self._call("read alerts", lambda c: c.hgetall(f"{self.p}defs"))
        return {_text(k): Alert.model_validate_json(v) for k, v in raw.items()}

    def delete_alert(self, alert_id: str) -> list[Firing]:
        """Remove the definition, its windows, cooldowns and firings; returns the removed firings."""
        firings = self.firings(alert_id, limit=None)
        windows = self._call("list windows", lambda c: list(c.scan_iter(f"{self.p}window:{alert_id}:*")))

        def run(c: redis.Redis) -> None:
            pipe = c.pipeline(transaction=True)
            pipe.hdel(f"{self.p}defs", alert_id)
            pipe.delete(f"{self.p}cooldown:{alert_id}", f"{self.p}firings:{alert_id}", *windows)
            for f in firings:
                pipe.delete(f"{self.p}firing:{f.id}")
                pipe.zrem(f"{self.p}firings", f.id)
            pipe.execute()

        self._call("delete alert", run)
        return firings

    # --- per-stream state -------------------------------------------------------------------
    def reset_calibration(self, alert_id: str) -> None:
        """Forget an alert's windows (its query changed: old scores say nothing about the new one)."""
        windows = self._call("list windows", lambda c: list(c.scan_iter(f"{self.p}window:{alert_id}:*")))
        if windows:
            self._call("reset windows", lambda c: c.delete(*windows))

    def window(self, alert_id: str, stream_id: str) -> list[Sample]:
        rows = self._call("read window", lambda c: c.lrange(f"{self.p}window:{alert_id}:{stream_id}", 0, -1))
        return [Sample.from_list(json.loads(r)) for r in rows]

    def last_fire_s(self, alert_id: str, stream_id: str) -> float | None:
        value = self._call("read cooldown", lambda c: c.hget(f"{self.p}cooldown:{alert_id}", stream_id))
        return None if value is None else float(value)

    def cursor(self) -> str | None:
        value = self._call("read cursor", lambda c: c.get(f"{self.p}cursor"))
        return None if value is None else _text(value)

    def set_cursor(self, entry_id: str) -> None:
        self._call("save cursor", lambda c: c.set(f"{self.p}cursor", entry_id))

    # --- one event, atomically --------------------------------------------------------------
    def commit(self, judged: Sequence[Judged], cursor: str | None = None) -> None:
        def run(c: redis.Redis) -> None:
            pipe = c.pipeline(transaction=True)
            for j in judged:
                key = f"{self.p}window:{j.alert_id}:{j.stream_id}"
                pipe.rpush(key, json.dumps(j.sample.as_list()))
                pipe.ltrim(key, -self.window_events, -1)
                if j.firing is not None:
                    self._queue_firing(pipe, j.firing, is_new=True)
                if j.last_fire_s is not None:
                    pipe.hset(f"{self.p}cooldown:{j.alert_id}", j.stream_id, repr(j.last_fire_s))
            if cursor is not None:
                pipe.set(f"{self.p}cursor", cursor)
            pipe.execute()

        if judged or cursor is not None:
            self._call("commit event", run)

    def _queue_firing(self, pipe: Any, firing: Firing, *, is_new: bool) -> None:
        pipe.set(f"{self.p}firing:{firing.id}", firing.model_dump_json())
        if is_new:
            pipe.zadd(f"{self.p}firings", {firing.id: firing.created_s})
            pipe.zadd(f"{self.p}firings:{firing.alert_id}", {firing.id: firing.created_s})

    def update_firing(self, firing: Firing) -> None:
        """Overwrite a stored firing (verdict, end); a firing deleted meanwhile stays deleted."""
        body = firing.model_dump_json()
        self._call("update firing", lambda c: c.set(f"{self.p}firing:{firing.id}", body, xx=True))

    def trim_firings(self, alert_id: str) -> int:
        """Drop the oldest firings of an alert past max_firings (their evidence stays pinned: another
        alert's firing may cite the same event; memory's pinned_max_age_s bounds it)."""
        key = f"{self.p}firings:{alert_id}"
        excess = self._call("count firings", lambda c: c.zcard(key)) - self.max_firings
        if excess <= 0:
            return 0
        old = [_text(i) for i in self._call("oldest firings", lambda c: c.zrange(key, 0, excess - 1))]

        def run(c: redis.Redis) -> None:
            pipe = c.pipeline(transaction=True)
            pipe.zrem(key, *old)
            pipe.zrem(f"{self.p}firings", *old)
            pipe.delete(*(f"{self.p}firing:{i}" for i in old))
            pipe.execute()

        self._call("trim firings", run)
        return len(old)

    # --- reads ------------------------------------------------------------------------------
    def firing(self, firing_id: str) -> Firing | None:
        raw = self._call("read firing", lambda c: c.get(f"{self.p}firing:{firing_id}"))
        return None if raw is None else Firing.model_validate_json(raw)

    def firings(self, alert_id: str | None = None, limit: int | None = 100) -> list[Firing]:
        """Newest first."""
        key = f"{self.p}firings:{alert_id}" if alert_id else f"{self.p}firings"
        stop = -1 if limit is None else limit - 1
        ids = [_text(i) for i in self._call("list firings", lambda c: c.zrevrange(key, 0, stop))]
        return self._get_many(ids)

    def _get_many(self, firing_ids: Sequence[str]) -> list[Firing]:
        if not firing_ids:
            return []
        raws = self._call("read firings", lambda c: c.mget([f"{self.p}firing:{i}" for i in firing_ids]))
        return [Firing.model_validate_json(r) for r in raws if r is not None]
