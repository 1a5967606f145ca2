"""Opening a shard: its newest complete snapshot, then the log records after it.

Replayed events go to an exact side index, searchable at once; the writer then inserts them into
a copy of the HNSW index in the background (inserting is as slow as it was the first time).
Replay is idempotent: an ADD whose event id the shard already holds is skipped (so every
acknowledged event comes back exactly once), a DELETE of an unknown event only removes files that
may have survived the crash, a PIN sets a flag. Redis changes the log holds are queued for Redis,
except those Redis reports it already applied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blobs import BlobStore
from .codec import row_from_log
from .config import MemorySettings
from .errors import MemoryBankError
from .partitions import EventRow
from .redis_sync import RedisSync
from .shard import IndexPolicy, ShardMemory
from .snapshot import ShardState, latest_snapshot, prune_snapshots, read_snapshot
from .wal import ADD, DELETE, ReplayLog

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Recovered:
    mem: ShardMemory
    lsn: int  # last log position
    snapshot_lsn: int
    next_fid: int  # next event number (never reused: the index needs them to grow)
    chunks: list[str]  # vector chunk files of the snapshot
    replayed: int  # log records read after the snapshot
    load_s: float = 0.0  # reading the snapshot
    replay_s: float = 0.0  # reading and applying the log after it


def recover_shard(
    directory: Path,
    settings: MemorySettings,
    policy: IndexPolicy,
    wal: ReplayLog,
    blobs: BlobStore,
    sync: RedisSync,
    redis_had_lsn: int,
) -> Recovered:
    """Load, replay, and leave the log open for appending. `redis_had_lsn`: Redis's watermark
    (-1 when Redis could not be asked: then every replayed change is queued)."""
    started = time.perf_counter()
    snapshots = directory / "snapshots"
    folder = latest_snapshot(snapshots)
    if folder is None:
        state = ShardState(0, 0, settings.embedding_dim, None, {})
    else:
        state = read_snapshot(folder, policy.hnsw)
        prune_snapshots(snapshots, keep=folder, chunks=state.chunks)  # leftovers of a crash
    if state.dim is not None and settings.embedding_dim not in (None, state.dim):
        raise MemoryBankError(
            f"the shard in {directory} holds dimension {state.dim}, settings ask for {settings.embedding_dim}"
        )
    got = Recovered(
        ShardMemory.from_state(state.dim, state.index, state.parts, policy),
        state.lsn, state.lsn, state.next_fid, state.chunks, 0,
    )  # fmt: skip
    sync.set_floor(state.lsn)
    got.load_s = time.perf_counter() - started
    _replay(got, wal, blobs, sync, redis_had_lsn)
    got.replay_s = time.perf_counter() - started - got.load_s
    wal.open_for_append(got.lsn)
    swept = blobs.sweep(got.next_fid)
    if got.replayed or swept:
        log.info("%s: replayed %d log records, removed %d stray files", directory, got.replayed, swept)
    return got


def _replay(got: Recovered, wal: ReplayLog, blobs: BlobStore, sync: RedisSync, redis_had: int) -> None:
    mem = got.mem
    rows: list[EventRow] = []
    vectors: list[np.ndarray] = []
    batch_ids: set[str] = set()

    def flush() -> None:  # to the side index: HNSW inserts happen after the shard has opened
        if rows:
            mem.add(rows, np.stack(vectors), defer=True)
            rows.clear()
            vectors.clear()
            batch_ids.clear()

    for record in wal.replay(got.snapshot_lsn):
        got.replayed += 1
        got.lsn = max(got.lsn, record.lsn)
        meta = record.meta
        if record.kind == ADD:
            row = row_from_log(meta)
            got.next_fid = max(got.next_fid, row.fid + 1)
            if row.event_id in mem.fid_of or row.event_id in batch_ids or record.vector is None:
                continue  # already held: exactly once
            if mem.dim is None:
                mem.set_dim(int(record.vector.shape[0]))
            rows.append(row)
            vectors.append(record.vector)
            batch_ids.add(row.event_id)
            if record.lsn > redis_had:
                sync.pending.append(sync.add_op(row))
            continue
        flush()
        if record.kind == DELETE:
            mem.remove(meta["event_id"])
            blobs.delete(meta["fid"], meta["n_thumbs"])
            op = sync.delete_op(record.lsn, meta["event_id"], meta["stream_id"])
        else:
            mem.set_pinned(meta["event_id"], meta["pinned"])
            op = sync.pin_op(record.lsn, meta["event_id"], meta["stream_id"], meta["pinned"])
        if record.lsn > redis_had:
            sync.pending.append(op)
    flush()
