"""Per-stream partitions: each stream's events as columns in arrival order, with their embeddings
contiguous, so a filter "this stream, this window" is a slice and its exact search one matrix-vector
product. This is also the shard's catalog (event ids, times, pins, sizes) and the vector store that
rebuilds read from.

Rows are kept in event-number order (`fid`, which only grows). Streams usually arrive in time order,
so their index times are sorted too and a window is a binary search; a stream that ever goes
backwards in time falls back to a mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .vector_index import _faiss

_FLOAT_COLS = ("t0", "t1", "start_pts_s", "end_pts_s", "start_wall_s", "end_wall_s", "added_wall_s")
_INT_COLS = ("fid", "bytes", "lsn")
_SMALL_COLS = ("n_thumbs",)
_BOOL_COLS = ("pinned", "has_blob", "alive")
COLUMNS = _FLOAT_COLS + _INT_COLS + _SMALL_COLS + _BOOL_COLS
_DTYPES: dict[str, type] = {
    **dict.fromkeys(_FLOAT_COLS, np.float64),
    **dict.fromkeys(_INT_COLS, np.int64),
    **dict.fromkeys(_SMALL_COLS, np.int16),
    **dict.fromkeys(_BOOL_COLS, np.bool_),
}


@dataclass(frozen=True, slots=True)
class EventRow:
    """What the shard remembers about one event besides its embedding and token blob."""

    fid: int  # the shard's event number (FAISS id)
    event_id: str
    stream_id: str
    t0: float  # start on the stream's clock (index time)
    t1: float  # end on the stream's clock
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    added_wall_s: float  # when the bank stored it (retention by age uses this)
    pinned: bool
    bytes: int  # disk bytes the event holds (blob, thumbnails, vector)
    lsn: int  # log record that added it
    n_thumbs: int
    has_blob: bool
    meta: str  # JSON: stats, grid_t0, grid_hw, text, token shape


def _nan_none(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _none_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def window_mask(t0: np.ndarray, t1: np.ndarray, since: float | None, until: float | None) -> np.ndarray:
    """Events overlapping [since, until): start < until and (end > since or a point at/after since)."""
    mask = np.ones(t0.shape[0], dtype=bool)
    if until is not None:
        mask &= t0 < until
    if since is not None:
        mask &= (t1 > since) | (t0 >= since)
    return mask


class StreamPartition:
    def __init__(self, stream_id: str, dim: int) -> None:
        self.stream_id = stream_id
        self.dim = dim
        self.n = 0  # rows used (alive or dead)
        self.dead = 0
        self.max_duration_s = 0.0
        self.is_time_sorted = True
        self.cols: dict[str, np.ndarray] = {}
        self.vectors = np.empty((0, dim), dtype=np.float32)  # [capacity, D]
        self.event_ids: list[str] = []
        self.meta: list[str] = []
        self._reserve(16)

    @property
    def live(self) -> int:
        return self.n - self.dead

    def _reserve(self, capacity: int) -> None:
        old = self.vectors.shape[0]
        if capacity <= old:
            return
        capacity = max(capacity, int(old * 1.5) + 16)
        vectors = np.empty((capacity, self.dim), dtype=np.float32)
        vectors[: self.n] = self.vectors[: self.n]
        self.vectors = vectors
        for name in COLUMNS:
            col: np.ndarray = np.zeros(capacity, dtype=_DTYPES[name])
            if name in self.cols:
                col[: self.n] = self.cols[name][: self.n]
            self.cols[name] = col

    def col(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]

    def append(self, row: EventRow, vector: np.ndarray) -> None:
        if self.n and row.fid <= self.cols["fid"][self.n - 1]:
            raise ValueError(f"event numbers must grow within a partition: {row.fid}")
        self._reserve(self.n + 1)
        i = self.n
        if i and row.t0 < self.cols["t0"][i - 1]:
            self.is_time_sorted = False
        values = {
            "t0": row.t0,
            "t1": row.t1,
            "start_pts_s": row.start_pts_s,
            "end_pts_s": row.end_pts_s,
            "start_wall_s": _nan_none(row.start_wall_s),
            "end_wall_s": _nan_none(row.end_wall_s),
            "added_wall_s": row.added_wall_s,
            "fid": row.fid,
            "bytes": row.bytes,
            "lsn": row.lsn,
            "n_thumbs": row.n_thumbs,
            "pinned": row.pinned,
            "has_blob": row.has_blob,
            "alive": True,
        }
        for name, value in values.items():
            self.cols[name][i] = value
        self.vectors[i] = vector
        self.event_ids.append(row.event_id)
        self.meta.append(row.meta)
        self.max_duration_s = max(self.max_duration_s, row.t1 - row.t0)
        self.n += 1

    def load(
        self,
        n: int,
        cols: dict[str, np.ndarray],
        store: np.ndarray | None,
        positions: np.ndarray | None,
        event_ids: list[str],
        meta: list[str],
    ) -> None:
        """Fill an empty partition from a snapshot's live rows (in fid order); vectors are copied
        straight from the index's storage rows `positions`. A quarter of headroom keeps the first
        events after a restart from regrowing (copying) every partition at once."""
        self._reserve(n + max(64, n // 4))
        for name in COLUMNS:
            self.cols[name][:n] = cols[name]
        if store is not None and positions is not None:
            np.take(store, positions, axis=0, out=self.vectors[:n])
        self.event_ids, self.meta, self.n, self.dead = list(event_ids), list(meta), n, 0
        t0 = self.col("t0")
        self.is_time_sorted = bool(np.all(t0[1:] >= t0[:-1])) if n > 1 else True
        self.max_duration_s = float((self.col("t1") - t0).max()) if n else 0.0

    def row_of(self, fid: int) -> int:
        """Row of an event number, or -1."""
        fids = self.col("fid")
        i = int(np.searchsorted(fids, fid))
        return i if i < self.n and fids[i] == fid and self.cols["alive"][i] else -1

    def row(self, i: int) -> EventRow:
        c = self.cols
        return EventRow(
            fid=int(c["fid"][i]),
            event_id=self.event_ids[i],
            stream_id=self.stream_id,
            t0=float(c["t0"][i]),
            t1=float(c["t1"][i]),
            start_pts_s=float(c["start_pts_s"][i]),
            end_pts_s=float(c["end_pts_s"][i]),
            start_wall_s=_none_nan(c["start_wall_s"][i]),
            end_wall_s=_none_nan(c["end_wall_s"][i]),
            added_wall_s=float(c["added_wall_s"][i]),
            pinned=bool(c["pinned"][i]),
            bytes=int(c["bytes"][i]),
            lsn=int(c["lsn"][i]),
            n_thumbs=int(c["n_thumbs"][i]),
            has_blob=bool(c["has_blob"][i]),
            meta=self.meta[i],
        )

    def window(self, since: float | None, until: float | None) -> tuple[int, int, np.ndarray | None]:
        """Rows that may match: [lo, hi) plus a mask over them (None when every row in it matches)."""
        lo, hi = 0, self.n
        if self.is_time_sorted:
            t0 = self.col("t0")
            if until is not None:
                hi = int(np.searchsorted(t0, until, side="left"))
            if since is not None:
                lo = int(np.searchsorted(t0, since - self.max_duration_s, side="left"))
            lo = min(lo, hi)
        mask = window_mask(self.cols["t0"][lo:hi], self.cols["t1"][lo:hi], since, until)
        mask &= self.cols["alive"][lo:hi]
        return lo, hi, None if bool(mask.all()) else mask

    def count(self, since: float | None, until: float | None) -> int:
        lo, hi, mask = self.window(since, until)
        return hi - lo if mask is None else int(mask.sum())

    def search(
        self, query: np.ndarray, k: int, since: float | None, until: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k inside the window: (scores [<=k] float32, fids [<=k] int64).

        FAISS's own kernel, not numpy's: one query against a block is a matrix-vector product, and
        a multi-threaded BLAS stalls on it when the cores are busy (p95 18 ms vs 1.4 ms measured)."""
        lo, hi, mask = self.window(since, until)
        if mask is None:
            block, fids = self.vectors[lo:hi], self.cols["fid"][lo:hi]
        else:
            rows = lo + np.flatnonzero(mask)
            block, fids = self.vectors[rows], self.cols["fid"][rows]
        if block.shape[0] == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        faiss = _faiss()
        scores, idx = faiss.knn(
            query.reshape(1, -1), block, min(k, block.shape[0]), faiss.METRIC_INNER_PRODUCT
        )
        return scores[0], fids[idx[0]]

    def mark_dead(self, i: int) -> None:
        if self.cols["alive"][i]:
            self.cols["alive"][i] = False
            self.dead += 1

    def compact(self) -> None:
        """Drop dead rows (keeps order, so fids and times stay sorted)."""
        keep = np.flatnonzero(self.col("alive"))
        self.vectors[: keep.shape[0]] = self.vectors[keep]
        for name in COLUMNS:
            self.cols[name][: keep.shape[0]] = self.cols[name][keep]
        self.event_ids = [self.event_ids[i] for i in keep.tolist()]
        self.meta = [self.meta[i] for i in keep.tolist()]
        self.n, self.dead = int(keep.shape[0]), 0
        t0 = self.col("t0")
        self.is_time_sorted = bool(np.all(t0[1:] >= t0[:-1])) if self.n > 1 else True
        self.max_duration_s = float((self.col("t1") - t0).max()) if self.n else 0.0

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.col("alive"))


def top_k(scores: np.ndarray, fids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (score descending, then event number ascending for ties)."""
    if scores.shape[0] > k:
        part = np.argpartition(-scores, k - 1)[:k]
        scores, fids = scores[part], fids[part]
    order = np.lexsort((fids, -scores))
    return scores[order].astype(np.float32), fids[order].astype(np.int64)
