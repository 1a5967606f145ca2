"""MemoryBank: the facade over the shards, the stream registry and Redis.

    bank = MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url)
    bank.register_stream("cam-1", clock="wall")
    ack = bank.add(event)                       # durable when it returns
    hits = bank.search(query, k=10, streams=["cam-1"], since=t0, until=t1)
    event = bank.get_event(hits[0].event_id)    # with its tokens

Streams map to shards by a stable hash of their id, so one stream's events live in one shard and
its per-stream partition. In a Ray deployment each shard's `MemoryWriter` runs in its own actor;
`shard_for` is the routing rule.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compressor.records import Event

from .config import MemorySettings
from .errors import MemoryBankError, UnknownEventError
from .partitions import top_k
from .records import Ack, BankHealth, Hit, StreamEntry, StreamInfo
from .redis_store import RedisStore
from .registry import StreamRegistry
from .timefilter import check_k, check_window
from .writer import MemoryWriter

LAYOUT_FORMAT = 1


def shard_for(stream_id: str, shards: int) -> int:
    return zlib.crc32(stream_id.encode()) % shards


def shard_dir(root: Path, shard: int) -> Path:
    return root / f"shard-{shard:02d}"


def check_layout(root: Path, shards: int) -> None:
    """The shard count is fixed when a bank is created (streams are hashed onto shards)."""
    path = root / "bank.json"
    if path.exists():
        layout = json.loads(path.read_text())
        if layout.get("shards") != shards:
            raise MemoryBankError(
                f"the bank in {root} has {layout.get('shards')} shards; settings ask for {shards} "
                "(re-sharding is not supported)"
            )
    else:
        path.write_text(json.dumps({"format": LAYOUT_FORMAT, "shards": shards}))


def open_writer(
    settings: MemorySettings,
    *,
    data_dir: Path | str,
    shard: int,
    redis_url: str | None = None,
    maintenance: bool = True,
) -> MemoryWriter:
    """One shard's writer on its own, in the bank's layout: what a Ray actor per shard holds. It
    opens its own Redis connection and registry view, and closes them with itself. Route events
    to it with `shard_for(stream_id, settings.shards)`."""
    if not 0 <= shard < settings.shards:
        raise ValueError(f"shard must be in [0, {settings.shards}), got {shard}")
    root = Path(data_dir) / "memory"
    root.mkdir(parents=True, exist_ok=True)
    check_layout(root, settings.shards)
    redis = RedisStore(settings, url=redis_url, data_dir=root)
    try:
        registry = StreamRegistry(root / "streams.json", redis)
        writer = MemoryWriter(
            shard_dir(root, shard), settings, redis, registry, shard=shard, maintenance=maintenance
        )
    except BaseException:
        redis.close()
        raise
    writer.owns_redis = True
    return writer


class MemoryBank:
    def __init__(
        self,
        settings: MemorySettings,
        *,
        data_dir: Path | str,
        redis_url: str | None = None,
        maintenance: bool = True,
    ) -> None:
        self.settings = settings
        self.root = Path(data_dir) / "memory"
        self.root.mkdir(parents=True, exist_ok=True)
        check_layout(self.root, settings.shards)
        self.redis = RedisStore(settings, url=redis_url, data_dir=self.root)
        self.writers: list[MemoryWriter] = []
        try:
            self.registry = StreamRegistry(self.root / "streams.json", self.redis)
            for i in range(settings.shards):
                self.writers.append(
                    MemoryWriter(
                        shard_dir(self.root, i),
                        settings,
                        self.redis,
                        self.registry,
                        shard=i,
                        maintenance=maintenance,
                    )
                )
        except BaseException:
            self.close(snapshot=False)
            raise
        self._closed = False

    def writer_for(self, stream_id: str) -> MemoryWriter:
        return self.writers[shard_for(stream_id, len(self.writers))]

    # --- streams ------------------------------------------------------------------------------
    def register_stream(
        self, stream_id: str, clock: str = "pts", options: dict[str, Any] | None = None
    ) -> StreamInfo:
        """clock: "pts" for recorded files, "wall" for live streams (see memory.records)."""
        return self.registry.register(stream_id, clock, options)

    def streams(self) -> dict[str, StreamInfo]:
        return self.registry.all()

    def remove_stream(self, stream_id: str) -> int:
        """Delete a stream's events (pinned ones too) and its registry entry; returns events deleted."""
        self.registry.get(stream_id)
        writer = self.writer_for(stream_id)
        with writer._rw.read():
            part = writer.mem.parts.get(stream_id)
            ids = [] if part is None else [part.event_ids[i] for i in part.live_rows().tolist()]
        deleted = writer.delete_many(ids, reason="stream removed")
        self.registry.remove(stream_id)
        return deleted

    def set_stream_health(self, stream_id: str, health: dict[str, Any]) -> None:
        self.registry.get(stream_id)
        self.redis.set_stream_health(stream_id, health)

    def stream_health(self) -> dict[str, dict[str, Any]]:
        return self.redis.get_stream_health()

    # --- events -------------------------------------------------------------------------------
    def add(self, event: Event) -> Ack:
        return self.writer_for(event.stream_id).add(event)

    def add_many(self, events: Sequence[Event]) -> list[Ack]:
        """Batched add (one fsync per shard). Each shard's part is all-or-nothing."""
        by_shard: dict[int, list[int]] = {}
        for i, e in enumerate(events):
            by_shard.setdefault(shard_for(e.stream_id, len(self.writers)), []).append(i)
        acks: list[Ack | None] = [None] * len(events)
        for shard, idx in by_shard.items():
            for i, ack in zip(idx, self.writers[shard].add_many([events[i] for i in idx]), strict=True):
                acks[i] = ack
        return [a for a in acks if a is not None]

    def search(
        self,
        query_embedding: np.ndarray,
        k: int = 10,
        streams: Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Hit]:
        check_k(k)
        check_window(since, until)
        if streams is not None:
            for stream_id in streams:
                self.registry.get(stream_id)
            shards = sorted({shard_for(s, len(self.writers)) for s in streams})
        else:
            shards = list(range(len(self.writers)))
        hits = [h for s in shards for h in self.writers[s].search(query_embedding, k, streams, since, until)]
        if len(shards) == 1:
            return hits
        _scores, order = top_k(np.array([h.score for h in hits], np.float32), np.arange(len(hits)), k)
        return [hits[int(i)] for i in order]

    def _owner(self, event_id: str) -> MemoryWriter:
        for writer in self.writers:
            if writer.has_event(event_id):
                return writer
        raise UnknownEventError(f"the bank holds no event {event_id!r}")

    def get_event(self, event_id: str) -> Event:
        return self._owner(event_id).get_event(event_id)

    def pin(self, event_id: str, pinned: bool = True) -> None:
        self._owner(event_id).pin(event_id, pinned)

    def delete(self, event_id: str) -> bool:
        try:
            return self._owner(event_id).delete(event_id)
        except UnknownEventError:
            return False

    def apply_retention(self, now_wall_s: float | None = None) -> list[str]:
        return [e for w in self.writers for e in w.apply_retention(now_wall_s)]

    def event_ids(self, stream_id: str, since: float | None = None, until: float | None = None) -> list[str]:
        """Ids of a stream's events whose start lies in [since, until) on its clock, oldest first.
        Read from memory: works while Redis is down."""
        self.registry.get(stream_id)
        since, until = check_window(since, until)
        return self.writer_for(stream_id).event_ids(stream_id, since, until)

    def last_entry_id(self) -> str:
        """Id of the newest entry of the new-event stream ("0-0" when empty): follow from it to see
        exactly what comes after now."""
        return self.redis.last_entry_id()

    def follow(self, last_id: str = "$", block_ms: int = 1000, count: int = 100) -> list[StreamEntry]:
        """New-event entries after last_id (see RedisStore.follow)."""
        return self.redis.follow(last_id, block_ms, count)

    def flush_redis(self) -> bool:
        """Try to catch Redis up now; True when it holds every change of every shard."""
        return all([w.flush_redis() for w in self.writers])

    def snapshot(self) -> None:
        for writer in self.writers:
            writer.snapshot()

    @property
    def events(self) -> int:
        return sum(w.events for w in self.writers)

    def health(self) -> BankHealth:
        if getattr(self, "_closed", True):
            return BankHealth("closed", self.redis.health(), [])
        pending = sum(len(w.sync.pending) for w in self.writers)
        if pending or not self.redis.is_up:
            self.redis.ping()  # a fresh look, bounded by the retry policy
        redis = self.redis.health(pending)
        state = "ok" if redis.state == "ok" and not pending else "degraded"
        return BankHealth(state, redis, [w.health() for w in self.writers])

    def close(self, snapshot: bool = True, keep_redis: bool = False) -> None:
        """Idempotent. snapshot=False leaves recovery to the log and keep_redis=True leaves the
        embedded Redis running: both together leave the disk as a kill -9 would."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for writer in self.writers:
            writer.close(snapshot=snapshot)
        self.redis.close(keep_server=keep_redis)

    def __enter__(self) -> MemoryBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
