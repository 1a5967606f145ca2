"""Redis: event metadata (a hash per event), per-stream sorted sets by time, the stream registry and
health, and the append-only Redis Stream of new events that alert engines and live sessions follow.

Every call has bounded retries with exponential backoff and socket timeouts, so an unreachable
Redis gives `StoreUnavailableError` after a bounded time, never a hang. While Redis is down, calls
fail fast (a probe at most every `redis_probe_interval_s`) and `health()` says so.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from . import _lua
from .config import MemorySettings
from .embedded_redis import EmbeddedRedis
from .errors import StoreUnavailableError
from .records import RedisHealth, StreamEntry, StreamInfo

log = logging.getLogger(__name__)
T = TypeVar("T")
_RETRIED = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
MAX_BLOCK_MS = 60_000


@dataclass(frozen=True, slots=True)
class RedisOp:
    """One idempotent change of an event's Redis state, tagged with its log position."""

    kind: str  # add | delete | pin
    shard: int
    lsn: int
    event_id: str
    stream_id: str
    publish: bool = True  # also append to the event stream (False when re-syncing old events)
    score: float = 0.0  # add: index time (start on the stream's clock)
    pinned: bool = False
    fields: dict[str, str] = field(default_factory=dict)  # add: the hash


def _s(x: Any) -> str:
    return "" if x is None else str(x)


class RedisStore:
    def __init__(self, settings: MemorySettings, *, url: str | None, data_dir: Path) -> None:
        self.settings = settings
        self.prefix = settings.redis_key_prefix
        self._embedded = (
            EmbeddedRedis(data_dir / "redis", settings.embedded_redis_appendfsync) if url is None else None
        )
        self.url = url
        self._lock = threading.Lock()
        self._failures = 0
        self._last_error = ""
        self._last_try_s = 0.0
        self._client = self._connect()
        self._followers: dict[float, redis.Redis] = {}
        self._scripts = {
            name: self._client.register_script(src)
            for name, src in (
                ("add", _lua.ADD),
                ("delete", _lua.DELETE),
                ("pin", _lua.PIN),
                ("bump", _lua.BUMP),
            )
        }

    # --- connection, retries, health ---------------------------------------------------------
    def _client_kwargs(self, socket_timeout_s: float) -> dict[str, Any]:
        s = self.settings
        retry = Retry(
            ExponentialBackoff(cap=s.redis_backoff_cap_s, base=s.redis_backoff_base_s), s.redis_retries
        )
        return dict(
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=s.redis_connect_timeout_s,
            retry=retry,
            retry_on_error=list(_RETRIED),
            decode_responses=True,
        )

    def _connect(self, socket_timeout_s: float | None = None) -> redis.Redis:
        kwargs = self._client_kwargs(socket_timeout_s or self.settings.redis_socket_timeout_s)
        if self._embedded is not None:
            return redis.Redis(unix_socket_path=self._embedded.socket_path, **kwargs)
        return redis.Redis.from_url(self.url, **kwargs)  # type: ignore[arg-type]

    @property
    def embedded(self) -> EmbeddedRedis | None:
        """The private server when no URL was given."""
        return self._embedded

    @property
    def where(self) -> str:
        return self._embedded.socket_path if self._embedded is not None else str(self.url)

    @property
    def is_up(self) -> bool:
        return self._failures == 0

    def may_try(self) -> bool:
        """False while Redis is known down and the last attempt is younger than the probe interval."""
        return self.is_up or time.monotonic() - self._last_try_s >= self.settings.redis_probe_interval_s

    def call(self, what: str, fn: Callable[[redis.Redis], T]) -> T:
        """Run fn(client); a connection failure (after the client's own retries) becomes
        StoreUnavailableError and marks Redis down until a later call succeeds."""
        self._last_try_s = time.monotonic()
        try:
            result = fn(self._client)
        except _RETRIED as exc:
            message = f"Redis at {self.where} unreachable during {what}: {exc}"
            with self._lock:
                self._failures += 1
                self._last_error = message
            if self._embedded is not None and self._embedded.ensure_running():
                self._client = self._connect()
                self._followers = {}
                self._scripts = {n: self._client.register_script(s.script) for n, s in self._scripts.items()}
            raise StoreUnavailableError(message) from exc
        if self._failures:
            log.warning("Redis at %s is back after %d failed calls", self.where, self._failures)
            with self._lock:
                self._failures = 0
        return result

    def ping(self) -> bool:
        try:
            return bool(self.call("ping", lambda c: c.ping()))
        except StoreUnavailableError:
            return False

    def health(self, pending_events: int = 0) -> RedisHealth:
        return RedisHealth(
            state="ok" if self.is_up else "unavailable",
            url=self.where,
            embedded=self._embedded is not None,
            last_error=self._last_error if not self.is_up else "",
            failures=self._failures,
            pending_events=pending_events,
        )

    # --- keys ---------------------------------------------------------------------------------
    def event_key(self, event_id: str) -> str:
        return f"{self.prefix}event:{event_id}"

    def stream_events_key(self, stream_id: str) -> str:
        return f"{self.prefix}stream:{stream_id}:events"

    def watermark_key(self, shard: int) -> str:
        return f"{self.prefix}shard:{shard}:applied_lsn"

    @property
    def events_stream_key(self) -> str:
        return f"{self.prefix}events"

    @property
    def pinned_key(self) -> str:
        return f"{self.prefix}pinned"

    # --- event state ----------------------------------------------------------------------------
    def apply(self, ops: Sequence[RedisOp]) -> list[int]:
        """Apply ops in order in one pipeline; returns the shard watermark each op found. Safe to
        repeat (the scripts are idempotent)."""
        if not ops:
            return []

        def run(client: redis.Redis) -> list[int]:
            pipe = client.pipeline(transaction=False)
            for op in ops:
                self._queue(pipe, op)
            return [int(w) for w in pipe.execute()]

        return self.call(f"{len(ops)} event updates", run)

    def _queue(self, pipe: Any, op: RedisOp) -> None:
        maxlen, publish = str(self.settings.event_stream_maxlen), "1" if op.publish else "0"
        keys = [
            self.event_key(op.event_id),
            self.stream_events_key(op.stream_id),
            self.events_stream_key,
            self.watermark_key(op.shard),
            self.pinned_key,
        ]
        args: list[Any]
        if op.kind == "add":
            fields = json.dumps(op.fields, separators=(",", ":"))
            pinned = "1" if op.pinned else "0"
            args = [op.event_id, repr(op.score), op.lsn, maxlen, publish, pinned, op.stream_id, fields]
        elif op.kind == "delete":
            args = [op.event_id, op.lsn, maxlen, publish, op.stream_id]
        elif op.kind == "pin":
            args = [op.event_id, op.lsn, maxlen, publish, op.stream_id, "1" if op.pinned else "0"]
        else:
            raise ValueError(f"unknown Redis op {op.kind!r}; allowed: add, delete, pin")
        self._scripts[op.kind](keys=keys, args=args, client=pipe)

    def bump_watermark(self, shard: int, lsn: int) -> None:
        self.call(
            "move watermark",
            lambda c: self._scripts["bump"](keys=[self.watermark_key(shard)], args=[lsn], client=c),
        )

    def applied_lsn(self, shard: int) -> int:
        return int(self.call("read watermark", lambda c: c.get(self.watermark_key(shard))) or 0)

    def event_fields(self, event_id: str) -> dict[str, str]:
        return cast(dict[str, str], self.call("read event", lambda c: c.hgetall(self.event_key(event_id))))

    def stream_event_ids(self, stream_id: str) -> list[str]:
        members = self.call(
            "read stream events", lambda c: c.zrange(self.stream_events_key(stream_id), 0, -1)
        )
        return cast(list[str], members)

    def last_entry_id(self) -> str:
        newest = self.call("read stream tip", lambda c: c.xrevrange(self.events_stream_key, count=1))
        return str(newest[0][0]) if newest else "0-0"

    def follow(self, last_id: str = "$", block_ms: int = 1000, count: int = 100) -> list[StreamEntry]:
        """Entries after last_id ("$": only new ones; "0": from the start), waiting up to block_ms.
        Pass the last returned entry_id back in. Never waits longer than block_ms plus timeouts."""
        if not 0 <= block_ms <= MAX_BLOCK_MS:
            raise ValueError(f"block_ms must be in [0, {MAX_BLOCK_MS}], got {block_ms}")
        if block_ms == 0:
            block: int | None = None  # XREAD BLOCK 0 waits forever; 0 here means "do not wait"
        else:
            block = block_ms
        timeout_s = self.settings.redis_socket_timeout_s + block_ms / 1000

        def read(_: redis.Redis) -> Any:
            return self._follower(timeout_s).xread(
                {self.events_stream_key: last_id}, count=count, block=block
            )

        reply = self.call("follow events", read)
        entries = []
        for _key, items in reply or []:
            for entry_id, data in items:
                entries.append(_entry(entry_id, data))
        return entries

    def _follower(self, timeout_s: float) -> redis.Redis:
        """A client whose read timeout covers the blocking wait (kept per timeout: followers poll)."""
        with self._lock:
            client = self._followers.get(timeout_s)
            if client is None:
                client = self._followers[timeout_s] = self._connect(socket_timeout_s=timeout_s)
            return client

    # --- stream registry --------------------------------------------------------------------------
    @property
    def streams_key(self) -> str:
        return f"{self.prefix}streams"

    @property
    def stream_health_key(self) -> str:
        return f"{self.prefix}stream_health"

    def put_stream(self, info: StreamInfo) -> None:
        self.call(
            "register stream", lambda c: c.hset(self.streams_key, info.stream_id, json.dumps(info.as_dict()))
        )

    def get_streams(self) -> dict[str, StreamInfo]:
        raw = cast(dict[str, str], self.call("read streams", lambda c: c.hgetall(self.streams_key)))
        return {sid: StreamInfo(**json.loads(v)) for sid, v in raw.items()}

    def delete_stream(self, stream_id: str) -> None:
        def run(c: redis.Redis) -> None:
            c.hdel(self.streams_key, stream_id)
            c.hdel(self.stream_health_key, stream_id)

        self.call("remove stream", run)

    def set_stream_health(self, stream_id: str, health: dict[str, Any]) -> None:
        self.call("stream health", lambda c: c.hset(self.stream_health_key, stream_id, json.dumps(health)))

    def get_stream_health(self) -> dict[str, dict[str, Any]]:
        raw = cast(
            dict[str, str], self.call("read stream health", lambda c: c.hgetall(self.stream_health_key))
        )
        return {sid: json.loads(v) for sid, v in raw.items()}

    def close(self, keep_server: bool = False) -> None:
        """keep_server: leave the embedded server running (it outlives a crash the same way)."""
        try:
            for client in (self._client, *self._followers.values()):
                client.close()
        finally:
            if self._embedded is not None:
                if keep_server:
                    self._embedded.detach()
                else:
                    self._embedded.close()


def _entry(entry_id: str, data: dict[str, str]) -> StreamEntry:
    def num(name: str) -> float | None:
        value = data.get(name, "")
        return float(value) if value not in ("", "None") else None

    return StreamEntry(
        entry_id=entry_id,
        op=data.get("op", ""),
        event_id=data.get("event_id", ""),
        stream_id=data.get("stream_id", ""),
        start_pts_s=num("start_pts_s"),
        end_pts_s=num("end_pts_s"),
        start_wall_s=num("start_wall_s"),
        end_wall_s=num("end_wall_s"),
    )
