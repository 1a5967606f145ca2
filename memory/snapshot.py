"""Shard snapshots: the index (memory/index_files.py), the partitions' columns and a manifest,
written to a temporary folder, fsynced and renamed into place, so a snapshot is either complete or
absent. The newest complete one plus the log records after its `lsn` give back the shard exactly.

Vectors are stored once, in the index's chunk files; loading copies them out into the partitions.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorruptStoreError
from .index_files import CHUNKS, prune_chunks, read_index, write_index
from .partitions import COLUMNS, StreamPartition
from .vector_index import EventIndex, HnswParams
from .wal import fsync_dir

FORMAT = 2


@dataclass(slots=True)
class ShardState:
    lsn: int
    next_fid: int
    dim: int | None
    index: EventIndex | None
    parts: dict[str, StreamPartition]
    chunks: list[str] = field(default_factory=list)  # vector chunk files the snapshot lists


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_snapshot(root: Path, state: ShardState) -> tuple[Path, list[str]]:
    """Write a complete snapshot of `state` under root/<lsn>; returns its folder and vector chunks.
    `state.chunks` are the previous snapshot's chunks, reused where the index only grew since."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{state.lsn:020d}"
    tmp = root / f"tmp-{state.lsn:020d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    chunks: list[str] = []
    if state.index is not None:
        chunks = write_index(state.index, tmp, root / CHUNKS, state.chunks)
        fsync_dir(root / CHUNKS)
    _write_catalog(tmp, state.parts)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "lsn": state.lsn,
        "next_fid": state.next_fid,
        "dim": state.dim,
        "streams": sorted(state.parts),
        "events": sum(p.live for p in state.parts.values()),
        "chunks": chunks,
        "generation": None if state.index is None else state.index.generation,
        "created_wall_s": time.time(),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    for path in tmp.iterdir():
        _fsync_file(path)
    fsync_dir(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    fsync_dir(root)
    return final, chunks


def _write_catalog(folder: Path, parts: dict[str, StreamPartition]) -> None:
    names = sorted(parts)
    live = {s: parts[s].live_rows() for s in names}
    columns: dict[str, np.ndarray] = {
        c: np.concatenate([parts[s].col(c)[live[s]] for s in names] or [np.empty(0)]) for c in COLUMNS
    }
    columns["stream_code"] = np.concatenate(
        [np.full(live[s].shape[0], i, np.int32) for i, s in enumerate(names)] or [np.empty(0, np.int32)]
    )
    np.savez(folder / "catalog.npz", **columns)  # type: ignore[arg-type]
    # Event ids and metadata hold no newline (ids are checked, metadata is compact JSON).
    (folder / "event_ids.txt").write_text(
        "\n".join(parts[s].event_ids[i] for s in names for i in live[s].tolist())
    )
    (folder / "meta.txt").write_text("\n".join(parts[s].meta[i] for s in names for i in live[s].tolist()))


def latest_snapshot(root: Path) -> Path | None:
    if not root.exists():
        return None
    done = [p for p in root.iterdir() if p.is_dir() and p.name.isdigit() and (p / "manifest.json").exists()]
    return max(done, key=lambda p: int(p.name)) if done else None


def prune_snapshots(root: Path, keep: Path, chunks: list[str]) -> None:
    """Remove every snapshot folder but `keep`, unfinished temporary ones, and unlisted chunks."""
    for path in root.iterdir():
        if path.is_dir() and path != keep and path.name != CHUNKS:
            shutil.rmtree(path, ignore_errors=True)
    prune_chunks(root / CHUNKS, chunks)


def read_snapshot(folder: Path, hnsw: HnswParams) -> ShardState:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            raise CorruptStoreError(
                f"snapshot {folder} has format {manifest.get('format')}, expected {FORMAT}"
            )
        dim, chunks = manifest["dim"], manifest["chunks"]
        index = None
        if manifest["generation"] is not None:
            index = read_index(folder, folder.parent / CHUNKS, chunks, dim, manifest["generation"], hnsw)
        catalog = np.load(folder / "catalog.npz")
        ids_text, meta_text = (folder / "event_ids.txt").read_text(), (folder / "meta.txt").read_text()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # RuntimeError: FAISS's read errors
        raise CorruptStoreError(f"snapshot {folder} is unreadable: {exc}") from exc
    n = int(manifest["events"])
    ids = ids_text.split("\n") if n else []
    meta = meta_text.split("\n") if n else []
    if len(ids) != n or len(meta) != n:
        raise CorruptStoreError(
            f"snapshot {folder}: {n} events but {len(ids)} ids and {len(meta)} metadata lines"
        )
    parts = _partitions(manifest["streams"], catalog, ids, meta, dim, index)
    return ShardState(manifest["lsn"], manifest["next_fid"], dim, index, parts, chunks)


def _partitions(
    names: list[str], catalog: Any, ids: list[str], meta: list[str], dim: int | None, index: EventIndex | None
) -> dict[str, StreamPartition]:
    codes = catalog["stream_code"]
    cols = {c: catalog[c] for c in COLUMNS}
    store = index.storage_view() if index is not None else None  # [ntotal, D] view, no copy
    parts: dict[str, StreamPartition] = {}
    for code, name in enumerate(names):
        rows = np.flatnonzero(codes == code)
        part = StreamPartition(name, dim or 0)
        fids = cols["fid"][rows]
        pos = None
        if store is not None and index is not None:
            pos = index.positions_of(fids)
            if (pos < 0).any():
                raise CorruptStoreError(
                    f"snapshot: {int((pos < 0).sum())} events of {name!r} missing from the index"
                )
        part.load(
            rows.shape[0],
            {c: cols[c][rows] for c in COLUMNS},
            store,
            pos,
            [ids[i] for i in rows.tolist()],
            [meta[i] for i in rows.tolist()],
        )
        parts[name] = part
    return parts
