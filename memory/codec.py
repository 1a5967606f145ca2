"""Between `compressor.Event` and what the bank stores: validation, the partition row, the log
record's metadata, the Redis hash, and back to an Event."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from compressor.records import Event, EventStats

from .blobs import BlobStore
from .errors import DimensionMismatchError, InvalidEventError
from .partitions import EventRow
from .records import StreamInfo
from .registry import check_id

_STAT_FIELDS = tuple(f.name for f in dataclasses.fields(EventStats))
_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(EventRow))


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event checked and encoded, ready for the log: nothing is written yet."""

    event: Event
    vector: np.ndarray  # [D] float32, unit norm
    t0: float
    t1: float
    blob: bytes | None  # safetensors of the arrays, None when the event has none
    meta: str  # compact JSON

    @property
    def nbytes(self) -> int:
        """Disk bytes the event holds: blob, thumbnails and its float32 vector."""
        blob = 0 if self.blob is None else len(self.blob)
        return blob + sum(len(t) for t in self.event.thumbnails) + 4 * self.vector.shape[0]


def _finite(name: str, value: float | None, event_id: str) -> None:
    if value is not None and not math.isfinite(value):
        raise InvalidEventError(f"event {event_id!r}: {name} must be finite, got {value}")


def unit_vector(x: Any, dim: int | None, what: str) -> np.ndarray:
    """[D] float32 scaled to unit norm; checks dimension, finiteness and a non-zero norm."""
    v = np.asarray(x, dtype=np.float32)
    if v.ndim != 1:
        raise DimensionMismatchError(f"{what} must be one vector [D], got shape {v.shape}")
    if dim is not None and v.shape[0] != dim:
        raise DimensionMismatchError(f"{what} has dimension {v.shape[0]}; this bank holds dimension {dim}")
    if not np.all(np.isfinite(v)):
        raise InvalidEventError(f"{what} holds NaN or infinite values")
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise InvalidEventError(f"{what} is all zeros (no direction to search)")
    return v / norm


def prepare(event: Event, info: StreamInfo, dim: int | None) -> PreparedEvent:
    check_id("event_id", event.event_id)
    vector = unit_vector(event.embedding, dim, f"event {event.event_id!r} embedding")
    for name in ("start_pts_s", "end_pts_s", "start_wall_s", "end_wall_s"):
        _finite(name, getattr(event, name), event.event_id)
    if info.clock == "wall":
        if event.start_wall_s is None or event.end_wall_s is None:
            raise InvalidEventError(
                f"event {event.event_id!r}: stream {info.stream_id!r} runs on the wall clock, so the event "
                "needs start_wall_s and end_wall_s"
            )
        if event.end_wall_s < event.start_wall_s:
            raise InvalidEventError(f"event {event.event_id!r} ends before it starts on the wall clock")
        t0, t1 = event.start_wall_s, event.end_wall_s
    else:
        t0, t1 = event.start_pts_s, event.end_pts_s
    return PreparedEvent(event, vector, float(t0), float(t1), _blob(event), _meta(event))


def _blob(event: Event) -> bytes | None:
    arrays: dict[str, np.ndarray] = {}
    if event.tokens.shape[0]:
        arrays = {
            "tokens": event.tokens.astype(np.float16, copy=False),
            "positions": event.positions.astype(np.int32, copy=False),
            "counts": event.counts.astype(np.int32, copy=False),
        }
    if len(event.grid_pts_s):
        arrays["grid_pts_s"] = np.asarray(event.grid_pts_s, dtype=np.float64)
    grid_embeddings = getattr(event, "grid_embeddings", None)
    if grid_embeddings is not None:
        arrays["grid_embeddings"] = grid_embeddings.astype(np.float16, copy=False)
    return BlobStore.encode(arrays) if arrays else None


def _meta(event: Event) -> str:
    """Compact JSON (it is kept in memory per event): zero stats and empty text are left out."""
    stats = {name: value for name in _STAT_FIELDS if (value := getattr(event.stats, name))}
    meta: dict[str, Any] = {
        "stats": stats,
        "grid": [int(event.grid_t0), int(event.grid_hw[0]), int(event.grid_hw[1])],
        "tokens": [int(event.tokens.shape[0]), int(event.tokens.shape[1])],
    }
    if event.text:
        meta["text"] = event.text
    return json.dumps(meta, separators=(",", ":"))


def make_row(p: PreparedEvent, fid: int, lsn: int, added_wall_s: float) -> EventRow:
    e = p.event
    return EventRow(
        fid=fid,
        event_id=e.event_id,
        stream_id=e.stream_id,
        t0=p.t0,
        t1=p.t1,
        start_pts_s=float(e.start_pts_s),
        end_pts_s=float(e.end_pts_s),
        start_wall_s=None if e.start_wall_s is None else float(e.start_wall_s),
        end_wall_s=None if e.end_wall_s is None else float(e.end_wall_s),
        added_wall_s=added_wall_s,
        pinned=False,
        bytes=p.nbytes,
        lsn=lsn,
        n_thumbs=len(e.thumbnails),
        has_blob=p.blob is not None,
        meta=p.meta,
    )


def row_to_log(row: EventRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _ROW_FIELDS}


def row_from_log(meta: dict[str, Any]) -> EventRow:
    return EventRow(**meta)


def redis_fields(row: EventRow, shard: int, thumbnail_path: str | None) -> dict[str, str]:
    """The event's Redis hash. `meta` is compact JSON: {"stats": {non-zero EventStats fields},
    "grid": [grid_t0, h, w], "tokens": [N, D_llm], "text": ... (when not empty)}."""
    fields = {
        "event_id": row.event_id,
        "stream_id": row.stream_id,
        "shard": shard,
        "start_pts_s": row.start_pts_s,
        "end_pts_s": row.end_pts_s,
        "start_wall_s": row.start_wall_s,
        "end_wall_s": row.end_wall_s,
        "t0": row.t0,
        "t1": row.t1,
        "added_wall_s": row.added_wall_s,
        "pinned": int(row.pinned),
        "bytes": row.bytes,
        "lsn": row.lsn,
        "thumbnail_path": thumbnail_path,
        "meta": row.meta,
    }
    return {k: "" if v is None else str(v) for k, v in fields.items()}


def to_event(
    row: EventRow, vector: np.ndarray, arrays: dict[str, np.ndarray], thumbnails: list[bytes]
) -> Event:
    meta = json.loads(row.meta)
    n, d_llm = meta["tokens"]
    grid_t0, grid_h, grid_w = meta["grid"]
    defaults = {f.name: 0 for f in dataclasses.fields(EventStats) if f.default is dataclasses.MISSING}
    stats = EventStats(**{**defaults, **{k: v for k, v in meta["stats"].items() if k in _STAT_FIELDS}})
    extra = {}
    if "grid_embeddings" in arrays:
        extra["grid_embeddings"] = arrays["grid_embeddings"]
    return Event(
        event_id=row.event_id,
        stream_id=row.stream_id,
        start_pts_s=row.start_pts_s,
        end_pts_s=row.end_pts_s,
        start_wall_s=row.start_wall_s,
        end_wall_s=row.end_wall_s,
        embedding=vector,
        tokens=arrays.get("tokens", np.zeros((n, d_llm), np.float16)),
        positions=arrays.get("positions", np.zeros((n, 3), np.int32)),
        counts=arrays.get("counts", np.zeros(n, np.int32)),
        grid_t0=grid_t0,
        grid_pts_s=arrays.get("grid_pts_s", np.zeros(0, np.float64)),
        grid_hw=(grid_h, grid_w),
        stats=stats,
        thumbnails=thumbnails,
        text=meta.get("text", ""),
        **extra,
    )
