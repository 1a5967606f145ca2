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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compressor.records import Event

from .blobs import BlobStore
from .codec import make_row, prepare, row_from_log, row_to_log, to_event, unit_vector
from .config import MemorySettings
from .errors import BankClosedError, DiskFullError, MemoryBankError, StoreUnavailableError, UnknownEventError
from .partitions import EventRow, StreamPartition
from .records import Ack, Hit, ShardHealth
from .redis_store import RedisOp, RedisStore
from .redis_sync import RedisSync
from .registry import StreamRegistry
from .retention import RetentionPolicy, choose_victims
from .rwlock import ReadWriteLock
from .shard import IndexPolicy, ShardMemory
from .snapshot import ShardState, latest_snapshot, prune_snapshots, read_snapshot, write_snapshot
from .timefilter import check_k, check_window
from .vector_index import EventIndex, HnswParams, IndexKind
from .wal import ADD, DELETE, PIN, LogRecord, ReplayLog

log = logging.getLogger(__name__)
_LOG_OVERHEAD_BYTES = 1024  # a log record's header and metadata, for the free-space check


@dataclass(slots=True)
class _Rebuild:
    kind: IndexKind
    changes: list[tuple[str, np.ndarray, np.ndarray | None]] = field(default_factory=list)
    thread: threading.Thread | None = None


def policy_from(settings: MemorySettings) -> IndexPolicy:
    hnsw = HnswParams(
        settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_ef_search, settings.hnsw_ef_search_max
    )
    return IndexPolicy(
        settings.index_kind,
        settings.exact_max_events,
        settings.filtered_exact_max,
        settings.compact_dead_fraction,
        hnsw,
    )


class MemoryWriter:
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
        self._rebuild: _Rebuild | None = None
        self._last_snapshot_s = time.monotonic()
        self.last_error = ""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.directory / "blobs", settings.token_cache_bytes)
        self.wal = ReplayLog(self.directory / "wal", settings.wal_segment_bytes)
        started = time.perf_counter()
        self.recovered_records = self._recover()
        self.recover_s = time.perf_counter() - started
        self._stop = threading.Event()
        self._maintainer: threading.Thread | None = None
        with self._mutate:
            self._flush_redis()
            self._after_change()
        if maintenance and settings.maintenance_interval_s > 0:
            self._maintainer = threading.Thread(
                target=self._maintain, name=f"memory-shard-{shard}", daemon=True
            )
            self._maintainer.start()

    # --- recovery --------------------------------------------------------------------------------
    def _recover(self) -> int:
        snapshots = self.directory / "snapshots"
        folder = latest_snapshot(snapshots)
        policy = policy_from(self.settings)
        if folder is None:
            state = ShardState(0, 0, self.settings.embedding_dim, None, {})
        else:
            state = read_snapshot(folder, policy.hnsw)
            prune_snapshots(snapshots, keep=folder, chunks=state.chunks)  # leftovers of a crash
        self._chunks = state.chunks
        if state.dim is not None and self.settings.embedding_dim not in (None, state.dim):
            raise MemoryBankError(
                f"shard {self.shard} in {self.directory} holds dimension {state.dim}, "
                f"settings ask for {self.settings.embedding_dim}"
            )
        self.mem = ShardMemory.from_state(state.dim, state.index, state.parts, policy)
        self.lsn = self.snapshot_lsn = state.lsn
        self.next_fid = state.next_fid
        self.sync = RedisSync(self.redis, self.shard, state.lsn, self._thumbnail)
        try:  # log records Redis already applied need not be sent again
            self._redis_had = self.redis.applied_lsn(self.shard)
        except StoreUnavailableError:
            self._redis_had = -1  # unknown: send everything replayed (the scripts are idempotent)
        replayed = self._replay(state.lsn)
        self.wal.open_for_append(self.lsn)
        swept = self.blobs.sweep(self.next_fid)
        if replayed or swept:
            log.info("shard %d: replayed %d log records, removed %d stray files", self.shard, replayed, swept)
        return replayed

    def _replay(self, after_lsn: int) -> int:
        rows: list[EventRow] = []
        vectors: list[np.ndarray] = []
        pending: set[str] = set()
        count = 0

        def flush() -> None:
            if rows:
                self.mem.add(rows, np.stack(vectors))
                rows.clear()
                vectors.clear()
                pending.clear()

        for record in self.wal.replay(after_lsn):
            count += 1
            self.lsn = max(self.lsn, record.lsn)
            if record.kind == ADD:
                row = row_from_log(record.meta)
                self.next_fid = max(self.next_fid, row.fid + 1)
                if row.event_id in self.mem.fid_of or row.event_id in pending:
                    continue  # already in the snapshot: exactly once
                if self.mem.dim is None:
                    self.mem.set_dim(int(record.vector.shape[0]))  # type: ignore[union-attr]
                assert record.vector is not None
                rows.append(row)
                vectors.append(record.vector)
                pending.add(row.event_id)
                if record.lsn > self._redis_had:
                    self.sync.pending.append(self.sync.add_op(row))
                continue
            flush()
            meta = record.meta
            if record.kind == DELETE:
                self.mem.remove(meta["event_id"])
                self.blobs.delete(meta["fid"], meta["n_thumbs"])
                op = self.sync.delete_op(record.lsn, meta["event_id"], meta["stream_id"])
            else:
                self.mem.set_pinned(meta["event_id"], meta["pinned"])
                op = self.sync.pin_op(record.lsn, meta["event_id"], meta["stream_id"], meta["pinned"])
            if record.lsn > self._redis_had:
                self.sync.pending.append(op)
        flush()
        return count

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
                self._rebuild.changes.append(("add", np.array([r.fid for r in rows], np.int64), vectors))
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
                    self._rebuild.changes.append(("remove", fids, None))
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

    # --- reads -------------------------------------------------------------------------------------
    def search(
        self,
        query_embedding: np.ndarray,
        k: int = 10,
        streams: Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Hit]:
        """Best k events by cosine similarity (best first); see memory.records for the time model.
        Unknown streams, bad windows and wrong dimensions raise."""
        self._check_open()
        check_k(k)
        since, until = check_window(since, until)
        if streams is not None:
            for stream_id in streams:
                self.registry.get(stream_id)
        query = unit_vector(query_embedding, self.mem.dim, "query embedding")
        with self._rw.read():
            scores, fids, _route = self.mem.search(query, k, streams, since, until)
            found = [(self.mem.where(f), f, s) for f, s in zip(fids.tolist(), scores.tolist(), strict=True)]
            return [self._hit(w[0], w[1], fid, score) for w, fid, score in found if w is not None]

    def _thumbnail(self, row: EventRow) -> str | None:
        return str(self.blobs.thumbnail_path(row.fid)) if row.n_thumbs else None

    def _hit(self, part: StreamPartition, i: int, fid: int, score: float) -> Hit:
        c = part.cols
        start_wall, end_wall = float(c["start_wall_s"][i]), float(c["end_wall_s"][i])
        return Hit(
            event_id=part.event_ids[i],
            stream_id=part.stream_id,
            start_pts_s=float(c["start_pts_s"][i]),
            end_pts_s=float(c["end_pts_s"][i]),
            start_wall_s=None if start_wall != start_wall else start_wall,  # NaN stands for None
            end_wall_s=None if end_wall != end_wall else end_wall,
            score=score,
            thumbnail_path=str(self.blobs.thumbnail_path(fid)) if c["n_thumbs"][i] else None,
            pinned=bool(c["pinned"][i]),
        )

    def get_event(self, event_id: str) -> Event:
        """The stored event with its tokens, positions, counts and thumbnails."""
        self._check_open()
        with self._rw.read():
            found = self.mem.locate(event_id)
            if found is None:
                raise UnknownEventError(f"shard {self.shard} holds no event {event_id!r}")
            part, i = found
            row, vector = part.row(i), part.vectors[i].copy()
        try:
            arrays = self.blobs.read(row.fid) if row.has_blob else {}
            thumbnails = [self.blobs.thumbnail_path(row.fid, j).read_bytes() for j in range(row.n_thumbs)]
        except FileNotFoundError as exc:  # deleted between the lookup and the read
            raise UnknownEventError(f"event {event_id!r} was deleted while being read") from exc
        return to_event(row, vector, arrays, thumbnails)

    def event_ids(self, stream_id: str, since: float | None, until: float | None) -> list[str]:
        """Ids of the stream's events starting in [since, until) on its clock, oldest first."""
        with self._rw.read():
            part = self.mem.parts.get(stream_id)
            if part is None:
                return []
            rows = part.live_rows()
            t0 = part.cols["t0"][rows]
            keep = np.ones(rows.shape[0], bool)
            if since is not None:
                keep &= t0 >= since
            if until is not None:
                keep &= t0 < until
            rows = rows[keep][np.argsort(t0[keep], kind="stable")]
            return [part.event_ids[i] for i in rows.tolist()]

    def has_event(self, event_id: str) -> bool:
        return event_id in self.mem.fid_of

    def event_row(self, event_id: str) -> EventRow:
        with self._rw.read():
            found = self.mem.locate(event_id)
            if found is None:
                raise UnknownEventError(f"shard {self.shard} holds no event {event_id!r}")
            return found[0].row(found[1])

    @property
    def events(self) -> int:
        return self.mem.live

    # --- maintenance -------------------------------------------------------------------------------
    def _after_change(self) -> None:
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
        fids, vectors = self.mem.live_vectors()
        rebuild = _Rebuild(kind)
        rebuild.thread = threading.Thread(
            target=self._run_rebuild,
            args=(rebuild, fids, vectors),
            name=f"memory-rebuild-{self.shard}",
            daemon=True,
        )
        self._rebuild = rebuild
        log.info("shard %d: rebuilding the index as %s over %d events", self.shard, kind, fids.shape[0])
        rebuild.thread.start()

    def _run_rebuild(self, rebuild: _Rebuild, fids: np.ndarray, vectors: np.ndarray) -> None:
        try:
            index: EventIndex | None = self.mem.build(rebuild.kind, fids, vectors)
        except Exception as exc:
            log.exception("shard %d: index rebuild failed", self.shard)
            self.last_error = f"index rebuild failed: {exc}"
            index = None
        with self._mutate:
            if index is not None and not self._closed:
                for what, ids, vecs in rebuild.changes:
                    if what == "add":
                        index.add(ids, vecs)  # type: ignore[arg-type]
                    else:
                        index.remove(ids)
                with self._rw.write():
                    self.mem.index = index
            self._rebuild = None

    def wait_for_rebuild(self, timeout_s: float = 600.0) -> None:
        """Block until a running index rebuild has been swapped in (tests, benchmarks)."""
        rebuild = self._rebuild
        if rebuild is not None and rebuild.thread is not None:
            rebuild.thread.join(timeout_s)

    def apply_retention(self, now_wall_s: float | None = None) -> list[str]:
        """Delete what the retention rules (settings, per-stream options) say; returns the event ids."""
        now = time.time() if now_wall_s is None else now_wall_s
        with self._mutate:
            self._check_open()
            victims: list[str] = []
            with self._rw.read():
                for name, part in self.mem.parts.items():
                    policy = self._retention_policy(name)
                    if policy == RetentionPolicy():
                        continue
                    rows = part.live_rows()
                    c = part.cols
                    chosen = choose_victims(
                        c["t0"][rows],
                        c["added_wall_s"][rows],
                        c["pinned"][rows],
                        c["bytes"][rows],
                        policy,
                        now,
                    )
                    victims += [part.event_ids[i] for i in rows[chosen].tolist()]
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

    def stream_bytes(self, stream_id: str) -> int:
        with self._rw.read():
            part = self.mem.parts.get(stream_id)
            return 0 if part is None else int(part.cols["bytes"][part.live_rows()].sum())

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
            disk_bytes=stored + self.wal.disk_bytes() + _folder_bytes(self.directory / "snapshots"),
            last_error=self.last_error,
        )

    def _check_open(self) -> None:
        if self._closed:
            raise BankClosedError(f"shard {self.shard} in {self.directory} is closed")

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


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
