"""MemoryWriter: the single writer of one shard (the lead wraps it in a Ray actor), readers concurrent.

Write path of `add` (the order is what makes a crash safe):
1. check everything (ids, stream, dimension, times, disk space); nothing is written on a bad event;
2. token blob and thumbnails to files (fsynced, renamed into place);
3. one log record per event, fsynced once per batch: the commit point; `add` acknowledges after it;
4. apply in memory (FAISS and partitions), then Redis (queued while Redis is down).
After a kill -9 the shard reopens from its newest snapshot and replays the log after it; replay skips
event ids it already holds, so every acknowledged event is searchable again exactly once. Deletion
logs first, then forgets in memory, Redis and disk; replaying a delete is harmless, so a crash in the
middle never leaves an event half-present.

Locks: `_mutate` serialises changes (one writer); `_rw` lets searches run together and excludes
them only while memory is being changed (not during fsyncs or snapshot writes).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from compressor.records import Event

from .blobs import BlobStore
from .codec import make_row, prepare, row_to_log
from .config import MemorySettings
from .errors import DiskFullError, MemoryBankError, StoreUnavailableError, UnknownEventError
from .partitions import EventRow
from .reader import ShardReader
from .rebuild import CatchUp, IndexRebuild
from .records import Ack, ShardHealth
from .recovery import recover_shard
from .redis_store import RedisOp, RedisStore
from .redis_sync import RedisSync
from .registry import StreamRegistry
from .retention import RetentionPolicy, choose_in_partitions
from .rwlock import ReadWriteLock
from .shard import IndexPolicy
from .snapshot import ShardState, latest_snapshot, prune_snapshots, write_snapshot
from .vector_index import EventIndex, IndexKind
from .wal import ADD, DELETE, PIN, LogRecord, ReplayLog

log = logging.getLogger(__name__)
_LOG_OVERHEAD_BYTES = 1024  # a log record's header and metadata, for the free-space check


class MemoryWriter(ShardReader):
    def __init__(
        self,
        directory: Path,
        settings: MemorySettings,
        redis: RedisStore,
        registry: StreamRegistry,
        *,
        shard: int = 0,
        maintenance: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.redis = redis
        self.registry = registry
        self.shard = shard
        self._mutate = threading.RLock()
        self._rw = ReadWriteLock()
        self._closed = False
        self.owns_redis = False  # open_writer: close() closes the Redis connection too
        self._rebuild: IndexRebuild | CatchUp | None = None
        self._last_snapshot_s = time.monotonic()
        self.last_error = ""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.directory / "blobs", settings.token_cache_bytes)
        self.wal = ReplayLog(self.directory / "wal", settings.wal_segment_bytes)
        self.sync = RedisSync(redis, shard, 0, self._thumbnail)
        started = time.perf_counter()
        try:  # log records Redis already applied need not be sent again
            redis_had = redis.applied_lsn(shard)
        except StoreUnavailableError:
            redis_had = -1
        got = recover_shard(
            self.directory,
            settings,
            IndexPolicy.from_settings(settings),
            self.wal,
            self.blobs,
            self.sync,
            redis_had,
        )
        self.mem, self.lsn, self.snapshot_lsn, self.next_fid = (
            got.mem,
            got.lsn,
            got.snapshot_lsn,
            got.next_fid,
        )
        self._chunks = got.chunks
        self.recovered_records = got.replayed
        self._load_s, self._replay_s = got.load_s, got.replay_s
        self.recover_s = time.perf_counter() - started
        self._stop = threading.Event()
        self._maintainer: threading.Thread | None = None
        with self._mutate:
            if self.mem.pending is not None:
                self._start_catch_up()
            self._flush_redis()
            self._after_change()
        if maintenance and settings.maintenance_interval_s > 0:
            self._maintainer = threading.Thread(
                target=self._maintain, name=f"memory-shard-{shard}", daemon=True
            )
            self._maintainer.start()

    # --- writes ------------------------------------------------------------------------------------
    def add(self, event: Event) -> Ack:
        return self.add_many([event])[0]

    def add_many(self, events: Sequence[Event]) -> list[Ack]:
        """Store events; durable (fsynced) when this returns. A bad event raises before anything
        is written (the whole batch is refused). Event ids already held are acknowledged as
        duplicates without writing."""
        with self._mutate:
            self._check_open()
            if len(self.sync.pending) >= self.settings.redis_max_pending:
                raise StoreUnavailableError(
                    f"Redis at {self.redis.where} has been unreachable for {len(self.sync.pending)} changes "
                    f"(redis_max_pending={self.settings.redis_max_pending}); refusing new events"
                )
            prepared = []
            in_batch: set[str] = set()
            dim = self.mem.dim
            for event in events:
                if event.event_id in in_batch or event.event_id in self.mem.fid_of:
                    continue
                p = prepare(event, self.registry.get(event.stream_id), dim)
                dim = p.vector.shape[0]
                in_batch.add(event.event_id)
                prepared.append(p)
            done: dict[str, Ack] = {}
            if prepared:
                rows = self._commit_adds(prepared)
                published = self._publish([self.sync.add_op(r) for r in rows])
                done = {r.event_id: Ack(r.event_id, self.shard, r.lsn, False, published) for r in rows}
                self._after_change()
            acks, seen = [], set()
            for event in events:
                fresh = event.event_id in done and event.event_id not in seen
                acks.append(done[event.event_id] if fresh else self._duplicate_ack(event.event_id))
                seen.add(event.event_id)
            return acks

    def _duplicate_ack(self, event_id: str) -> Ack:
        found = self.mem.locate(event_id)
        lsn = -1 if found is None else int(found[0].cols["lsn"][found[1]])
        return Ack(event_id, self.shard, lsn, duplicate=True, published=not self.sync.pending)

    def _commit_adds(self, prepared: list) -> list[EventRow]:
        needed = sum(p.nbytes + _LOG_OVERHEAD_BYTES for p in prepared)
        self._check_space(needed)
        now = time.time()
        rows = [make_row(p, self.next_fid + i, self.lsn + 1 + i, now) for i, p in enumerate(prepared)]
        written: list[Path] = []
        try:
            for p, row in zip(prepared, rows, strict=True):
                if p.blob is not None or p.event.thumbnails:
                    written += self.blobs.write(row.fid, p.blob, p.event.thumbnails)
            if written:
                self.blobs.sync_folders(r.fid for r in rows)
            self.wal.append(
                [LogRecord(r.lsn, ADD, row_to_log(r), p.vector) for r, p in zip(rows, prepared, strict=True)]
            )
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        self.lsn, self.next_fid = rows[-1].lsn, rows[-1].fid + 1
        vectors = np.stack([p.vector for p in prepared])
        with self._rw.write():
            if self.mem.dim is None:
                self.mem.set_dim(int(vectors.shape[1]))
            self.mem.add(rows, vectors)
            if self._rebuild is not None:
                self._rebuild.record_add(np.array([r.fid for r in rows], np.int64), vectors)
        return rows

    def _check_space(self, needed: int) -> None:
        free = shutil.disk_usage(self.directory).free
        if free - needed < self.settings.min_free_disk_bytes:
            raise DiskFullError(
                f"{free} bytes free under {self.directory}; storing {needed} more would go below "
                f"min_free_disk_bytes={self.settings.min_free_disk_bytes}"
            )

    def delete(self, event_id: str) -> bool:
        """Forget an event everywhere; False if the shard does not hold it."""
        return self.delete_many([event_id]) == 1

    def delete_many(self, event_ids: Sequence[str], reason: str = "request") -> int:
        with self._mutate:
            self._check_open()
            found = [self.mem.locate(e) for e in dict.fromkeys(event_ids)]
            rows = [part.row(i) for part, i in (f for f in found if f is not None)]
            if not rows:
                return 0
            records = [
                LogRecord(
                    self.lsn + 1 + i,
                    DELETE,
                    {
                        "event_id": r.event_id,
                        "stream_id": r.stream_id,
                        "fid": r.fid,
                        "n_thumbs": r.n_thumbs,
                        "reason": reason,
                    },
                )
                for i, r in enumerate(rows)
            ]
            self.wal.append(records)  # deletion needs no free-space floor: it is how space comes back
            self.lsn = records[-1].lsn
            fids = np.array([r.fid for r in rows], np.int64)
            with self._rw.write():
                for row in rows:
                    self.mem.remove(row.event_id)
                if self._rebuild is not None:
                    self._rebuild.record_remove(fids)
            for row in rows:
                self.blobs.delete(row.fid, row.n_thumbs)
            self._publish(
                [
                    self.sync.delete_op(rec.lsn, r.event_id, r.stream_id)
                    for rec, r in zip(records, rows, strict=True)
                ]
            )
            self._after_change()
            return len(rows)

    def pin(self, event_id: str, pinned: bool = True) -> None:
        """Mark an event as alert evidence: retention deletes pinned events last."""
        with self._mutate:
            self._check_open()
            found = self.mem.locate(event_id)
            if found is None:
                raise UnknownEventError(f"shard {self.shard} holds no event {event_id!r}")
            row = found[0].row(found[1])
            if row.pinned == pinned:
                return
            record = LogRecord(
                self.lsn + 1, PIN, {"event_id": event_id, "stream_id": row.stream_id, "pinned": pinned}
            )
            self.wal.append([record])
            self.lsn = record.lsn
            with self._rw.write():
                self.mem.set_pinned(event_id, pinned)
            self._publish([self.sync.pin_op(record.lsn, event_id, row.stream_id, pinned)])
            self._after_change()

    def _publish(self, ops: list[RedisOp]) -> bool:
        self.sync.pending.extend(ops)
        return self._flush_redis()

    def flush_redis(self) -> bool:
        """Try to catch Redis up now (it is also tried after every change and by the maintenance
        thread); True when Redis holds everything."""
        with self._mutate:
            self._check_open()
            return self._flush_redis()

    def _flush_redis(self) -> bool:
        resyncs = self.sync.resyncs
        ok = self.sync.flush(lambda: self.mem.rows())
        if self.sync.resyncs != resyncs:
            self.registry.refresh()  # a Redis that lost events lost the registry too
        if not ok:
            self.last_error = self.sync.last_error
        elif self.last_error.startswith("Redis"):  # the outage is over
            self.last_error = ""
        return ok

    # --- maintenance -------------------------------------------------------------------------------
    def _after_change(self) -> None:
        if self.mem.pending is not None:
            return  # a snapshot needs every event in the main index: after the catch-up
        due = self.lsn - self.snapshot_lsn >= self.settings.snapshot_every_events or (
            self.lsn > self.snapshot_lsn
            and time.monotonic() - self._last_snapshot_s >= self.settings.snapshot_interval_s
        )
        if due:
            self._snapshot_logged()
        kind = self.mem.wanted_rebuild()
        if kind is not None and self._rebuild is None:
            self._start_rebuild(kind)

    def snapshot(self) -> Path | None:
        """Write a snapshot now and drop the log it covers; None if nothing changed."""
        with self._mutate:
            self._check_open()
            return self._snapshot()

    def _snapshot(self) -> Path | None:
        if self.mem.pending is not None:
            return None  # the catch-up is still inserting replayed events; the log keeps them
        if self.lsn == self.snapshot_lsn and latest_snapshot(self.directory / "snapshots") is not None:
            return None
        with self._rw.read():
            state = ShardState(
                self.lsn, self.next_fid, self.mem.dim, self.mem.index, self.mem.parts, self._chunks
            )
            folder, self._chunks = write_snapshot(self.directory / "snapshots", state)
        self.snapshot_lsn = self.lsn
        self._last_snapshot_s = time.monotonic()
        self.wal.rotate()
        self.wal.drop_through(self.snapshot_lsn)
        prune_snapshots(self.directory / "snapshots", keep=folder, chunks=self._chunks)
        return folder

    def _snapshot_logged(self) -> None:
        try:
            self._snapshot()
        except OSError as exc:  # the log still holds everything: nothing is lost, replay grows
            self.last_error = f"snapshot failed: {exc}"
            log.error("shard %d: snapshot failed, keeping the log: %s", self.shard, exc)

    def _start_rebuild(self, kind: IndexKind) -> None:
        self._rebuild = IndexRebuild(kind, self.mem, self._finish_rebuild)
        log.info(
            "shard %d: rebuilding the index as %s over %d events", self.shard, kind, self._rebuild.events
        )
        self._rebuild.start()

    def _finish_rebuild(self, rebuild: IndexRebuild, index: EventIndex | None) -> None:
        with self._mutate:
            if index is None:
                self.last_error = "index rebuild failed (see the log)"
            elif not self._closed:
                rebuild.catch_up(index)
                with self._rw.write():
                    self.mem.index = index
            self._rebuild = None

    def _start_catch_up(self) -> None:
        job = CatchUp(self.mem, self._finish_catch_up)
        self._rebuild = job
        log.info(
            "shard %d: inserting %d replayed events into the index in the background", self.shard, job.events
        )
        job.start()

    def _finish_catch_up(self, job: CatchUp, grown: EventIndex | None) -> None:
        with self._mutate:
            if grown is None:
                self.last_error = (
                    "catching the index up failed (see the log); searches stay exact on the log tail"
                )
            elif not self._closed:
                with self._rw.write():
                    self.mem.catch_up_finish(grown, job.upto_fid)
            self._rebuild = None
            if not self._closed:
                self._after_change()

    def wait_for_rebuild(self, timeout_s: float = 600.0) -> None:
        """Block until a running index rebuild or catch-up has been swapped in (tests, benchmarks)."""
        rebuild = self._rebuild
        if rebuild is not None:
            rebuild.join(timeout_s)

    def apply_retention(self, now_wall_s: float | None = None) -> list[str]:
        """Delete what the retention rules (settings, per-stream options) say; returns the event ids."""
        now = time.time() if now_wall_s is None else now_wall_s
        with self._mutate:
            self._check_open()
            with self._rw.read():
                victims = choose_in_partitions(self.mem.parts, self._retention_policy, now)
            if victims:
                self.delete_many(victims, reason="retention")
            return victims

    def _retention_policy(self, stream_id: str) -> RetentionPolicy:
        s, opt = self.settings, self.registry.option
        budget = opt(stream_id, "disk_budget_bytes", s.stream_disk_budget_bytes)
        return RetentionPolicy(
            max_age_s=opt(stream_id, "retention_max_age_s", s.retention_max_age_s),
            pinned_max_age_s=opt(stream_id, "pinned_max_age_s", s.pinned_max_age_s),
            budget_bytes=None if budget is None else int(budget),
        )

    def _maintain(self) -> None:
        while True:
            wait_s = self.settings.maintenance_interval_s
            if self.sync.pending:
                wait_s = min(wait_s, self.settings.redis_probe_interval_s)
            if self._stop.wait(wait_s):
                return
            try:
                with self._mutate:
                    if self._closed:
                        return
                    self._flush_redis()
                    self.apply_retention()
                    self._after_change()
            except MemoryBankError as exc:
                self.last_error = str(exc)
                log.warning("shard %d maintenance: %s", self.shard, exc)
            except Exception:
                log.exception("shard %d maintenance failed", self.shard)

    # --- health and closing ----------------------------------------------------------------------
    def health(self) -> ShardHealth:
        with self._rw.read():
            index = self.mem.index
            stored = sum(int(p.cols["bytes"][p.live_rows()].sum()) for p in self.mem.parts.values())
        return ShardHealth(
            shard=self.shard,
            events=self.mem.live,
            index=index.kind if index else "none",
            dead_entries=index.dead if index else 0,
            lsn=self.lsn,
            snapshot_lsn=self.snapshot_lsn,
            recovered_records=self.recovered_records,
            recover_s=round(self.recover_s, 4),
            snapshot_load_s=round(self._load_s, 4),
            replay_s=round(self._replay_s, 4),
            # event bytes count each vector, which lives in the snapshot's chunks: count it once
            disk_bytes=stored
            - 4 * (self.mem.dim or 0) * self.mem.live
            + self.wal.disk_bytes()
            + _folder_bytes(self.directory / "snapshots"),
            last_error=self.last_error,
        )

    def close(self, snapshot: bool = True) -> None:
        """Stop background work, snapshot (unless snapshot=False, which leaves recovery to the log,
        as after a crash), try to catch Redis up, release files. Idempotent."""
        if self._closed:
            return
        self._stop.set()
        if self._maintainer is not None:
            self._maintainer.join()
        self.wait_for_rebuild()
        with self._mutate:
            if self._closed:
                return
            if snapshot:
                self._snapshot_logged()
            self._flush_redis()
            self.wal.close()
            self._closed = True
        if self.owns_redis:
            self.redis.close()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
