"""One shard's in-memory state: the FAISS index, the stream partitions and the id maps, and the
search over them. No files, no Redis: the writer makes changes durable before it applies them here.

Routing a search:
- no filter: the FAISS index (exact or HNSW);
- a filter matching at most `exact_filter_limit()` events: exact search over the partitions' slices
  (recall 1; measured faster than an id selector there, see benchmarks/results_memory.md);
- a filter matching a large share of the events (`postfilter_min_selectivity`): the index
  unfiltered for 2k / share candidates, keeping those that match (no selector to build);
- a filter in between: the FAISS index with an IDSelectorBitmap over the matching rows and the
  HNSW beam widened by 1/selectivity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import MemorySettings
from .partitions import EventRow, StreamPartition, top_k, window_mask
from .vector_index import EventIndex, HnswParams, IndexKind, build_index, choose_kind

_COMPACT_MIN_DEAD = 64  # partitions compact once this many rows (and a quarter of them) are dead


@dataclass(frozen=True, slots=True)
class IndexPolicy:
    requested: str  # auto | flat | hnsw
    exact_max_events: int
    filtered_exact_max: int | None  # None: sqrt(8 * live events * ef_search)
    compact_dead_fraction: float
    hnsw: HnswParams
    postfilter_min_selectivity: float = 0.05

    @classmethod
    def from_settings(cls, settings: MemorySettings) -> IndexPolicy:
        s = settings
        hnsw = HnswParams(s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search, s.hnsw_ef_search_max)
        return cls(
            s.index_kind,
            s.exact_max_events,
            s.filtered_exact_max,
            s.compact_dead_fraction,
            hnsw,
            s.postfilter_min_selectivity,
        )


class ShardMemory:
    def __init__(self, dim: int | None, policy: IndexPolicy) -> None:
        self.dim = dim
        self.policy = policy
        self.index: EventIndex | None = (
            None if dim is None else EventIndex(dim, self._kind_for(0), policy.hnsw)
        )
        self.parts: dict[str, StreamPartition] = {}
        self.fid_of: dict[str, int] = {}  # event id -> event number
        self.stream_of: dict[int, str] = {}  # event number -> stream id
        # Events logged after the snapshot, kept in an exact side index while a background job
        # inserts them into a copy of the HNSW index (so reopening does not wait for HNSW inserts).
        self.pending: EventIndex | None = None

    def _kind_for(self, live: int) -> IndexKind:
        return choose_kind(self.policy.requested, live, self.policy.exact_max_events)

    @classmethod
    def from_state(
        cls, dim: int | None, index: EventIndex | None, parts: dict[str, StreamPartition], policy: IndexPolicy
    ) -> ShardMemory:
        self = cls(None, policy)
        self.dim, self.index, self.parts = dim, index, parts
        if dim is not None and index is None:
            self.index = EventIndex(dim, self._kind_for(0), policy.hnsw)
        for name, part in parts.items():
            fids = part.col("fid").tolist()
            self.fid_of.update(zip(part.event_ids, fids, strict=True))
            self.stream_of.update(dict.fromkeys(fids, name))
        return self

    @property
    def live(self) -> int:
        return len(self.fid_of)

    def set_dim(self, dim: int) -> None:
        self.dim = dim
        self.index = EventIndex(dim, self._kind_for(0), self.policy.hnsw)

    # --- changes ---------------------------------------------------------------------------------
    def add(self, rows: Sequence[EventRow], vectors: np.ndarray, defer: bool = False) -> None:
        """rows in ascending fid order, not yet held; vectors: [n, D] float32 unit norm. defer: put
        them in the side index (recovery's log tail) when the main index is HNSW."""
        assert self.index is not None and self.dim is not None
        if defer and self.index.kind == "hnsw" and self.pending is None:
            self.pending = EventIndex(self.dim, "flat", self.policy.hnsw)
        for row, vector in zip(rows, vectors, strict=True):
            part = self.parts.get(row.stream_id)
            if part is None:
                part = self.parts[row.stream_id] = StreamPartition(row.stream_id, self.dim)
            part.append(row, vector)
            self.fid_of[row.event_id] = row.fid
            self.stream_of[row.fid] = row.stream_id
        target = self.pending if self.pending is not None else self.index
        target.add(np.fromiter((r.fid for r in rows), np.int64, len(rows)), vectors)

    def locate(self, event_id: str) -> tuple[StreamPartition, int] | None:
        fid = self.fid_of.get(event_id)
        if fid is None:
            return None
        part = self.parts[self.stream_of[fid]]
        return part, part.row_of(fid)

    def remove(self, event_id: str) -> EventRow | None:
        """Forget an event (tombstone in FAISS, dead row in its partition); its row, or None."""
        found = self.locate(event_id)
        if found is None:
            return None
        part, i = found
        row = part.row(i)
        part.mark_dead(i)
        if part.dead >= _COMPACT_MIN_DEAD and part.dead * 4 >= part.n:
            part.compact()
        if part.live == 0:
            del self.parts[part.stream_id]
        del self.fid_of[event_id], self.stream_of[row.fid]
        assert self.index is not None
        for index in (self.index, self.pending):
            if index is not None:
                index.remove(np.array([row.fid], np.int64))
        return row

    def set_pinned(self, event_id: str, pinned: bool) -> EventRow | None:
        found = self.locate(event_id)
        if found is None:
            return None
        part, i = found
        part.cols["pinned"][i] = pinned
        return part.row(i)

    # --- index rebuilds ----------------------------------------------------------------------------
    def wanted_rebuild(self) -> IndexKind | None:
        """The kind a rebuild should make now (kind change under auto, or too many tombstones)."""
        if self.index is None or self.pending is not None:
            return None  # the catch-up comes first
        live = self.index.live
        kind = self.index.kind
        if self.policy.requested == "auto":
            if kind == "flat" and live > self.policy.exact_max_events:
                return "hnsw"
            if kind == "hnsw" and live <= self.policy.exact_max_events // 2:  # hysteresis
                return "flat"
        if self.index.dead and self.index.dead_fraction >= self.policy.compact_dead_fraction:
            return kind
        return None

    def catch_up_start(self) -> tuple[EventIndex, np.ndarray, np.ndarray]:
        """(main index, fids, vectors copies) of the side index now. The main index stays unchanged
        while a side index exists (adds go to the side), so a copy of it can grow meanwhile."""
        assert self.index is not None and self.pending is not None
        return self.index, self.pending.ids.copy(), self.pending.storage_view().copy()

    def catch_up_finish(self, grown: EventIndex, upto_fid: int) -> None:
        """Swap in `grown` (main index + side events up to upto_fid): add what came later, drop
        what was deleted meanwhile, forget the side index. Call under the write lock."""
        assert self.pending is not None
        later = self.pending.ids > upto_fid
        if later.any():
            grown.add(self.pending.ids[later], self.pending.storage_view()[later].copy())
        live = np.fromiter(self.stream_of, np.int64, len(self.stream_of))
        grown.set_alive(grown.ids, np.isin(grown.ids, live))
        self.index, self.pending = grown, None

    def live_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(fids [n] int64, vectors [n, D] float32 copies) of every live event."""
        fids, vecs = [], []
        for part in self.parts.values():
            rows = part.live_rows()
            fids.append(part.cols["fid"][rows])
            vecs.append(part.vectors[rows])
        if not fids:
            return np.empty(0, np.int64), np.empty((0, self.dim or 0), np.float32)
        return np.concatenate(fids), np.concatenate(vecs)

    def build(self, kind: IndexKind, fids: np.ndarray, vectors: np.ndarray) -> EventIndex:
        assert self.dim is not None
        return build_index(self.dim, kind, self.policy.hnsw, fids, vectors)

    # --- search --------------------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int,
        streams: Sequence[str] | None,
        since: float | None,
        until: float | None,
        route: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(scores [<=k], fids [<=k], route taken). query: [D] unit norm. Streams this shard does not
        hold match nothing. `route` forces a filtered route (benchmarks): "partitions", "selector"
        (the index with an id selector) or "selector_exact" (FAISS exact search with the selector)."""
        empty = np.empty(0, np.float32), np.empty(0, np.int64)
        if self.index is None or self.live == 0:
            return (*empty, "empty")
        if streams is None and since is None and until is None and route is None:
            return (*self._with_pending(self.index.search(query, k), query, k, None), self.index.kind)
        names = (
            list(self.parts) if streams is None else [s for s in dict.fromkeys(streams) if s in self.parts]
        )
        counts = dict(zip(names, (self.parts[s].count(since, until) for s in names), strict=True))
        matching = sum(counts.values())
        if matching == 0:
            return (*empty, "empty")
        selectivity = matching / max(self.index.live, 1)
        if route is None:
            if matching <= self.exact_filter_limit():
                route = "partitions"
            elif selectivity >= self.policy.postfilter_min_selectivity:
                route = "postfilter"
            else:
                route = "selector"
        if route == "postfilter":
            found = self._postfilter(query, k, set(names), since, until, selectivity)
            if found is not None:
                return (*found, route)
            route = "selector"  # too few candidates matched: the filter and the query disagree
        if route == "partitions":
            results = [self.parts[s].search(query, k, since, until) for s in names if counts[s]]
            scores = np.concatenate([r[0] for r in results])
            fids = np.concatenate([r[1] for r in results])
            return (*top_k(scores, fids, k), route)
        allowed = self._allowed(self.index, names, since, until)
        if route == "selector_exact":
            found = self.index.search_exact(query, k, allowed)
        else:
            found = self.index.search(query, k, allowed, selectivity)
        return (*self._with_pending(found, query, k, (names, since, until)), route)

    def _postfilter(
        self,
        query: np.ndarray,
        k: int,
        names: set[str],
        since: float | None,
        until: float | None,
        selectivity: float,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-k of the unfiltered search's candidates that match, or None when fewer than k did
        (then the k-th match may lie beyond the candidates)."""
        assert self.index is not None
        wanted = min(self.index.live, math.ceil(2 * k / selectivity))
        scores, fids = self._with_pending(self.index.search(query, wanted), query, wanted, None)
        keep = np.array([self._matches(int(f), names, since, until) for f in fids], dtype=bool)
        if keep.sum() < min(k, self.index.live) and wanted < self.index.live:
            return None
        return scores[keep][:k], fids[keep][:k]

    def _matches(self, fid: int, names: set[str], since: float | None, until: float | None) -> bool:
        stream = self.stream_of.get(fid)
        if stream is None or stream not in names:
            return False
        part = self.parts[stream]
        i = part.row_of(fid)
        if i < 0:
            return False
        t0, t1 = part.cols["t0"][i : i + 1], part.cols["t1"][i : i + 1]
        return bool(window_mask(t0, t1, since, until)[0])

    def _with_pending(
        self, found: tuple[np.ndarray, np.ndarray], query: np.ndarray, k: int, where: tuple | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merge in the side index's exact results (while a catch-up runs)."""
        if self.pending is None or self.pending.live == 0:
            return found
        allowed = None if where is None else self._allowed(self.pending, *where)
        extra = (
            self.pending.search(query, k) if allowed is None else self.pending.search_exact(query, k, allowed)
        )
        return top_k(np.concatenate([found[0], extra[0]]), np.concatenate([found[1], extra[1]]), k)

    def exact_filter_limit(self) -> int:
        """Largest filter searched exactly. Exact costs ~ matching events (memory-bound scans); HNSW
        with a selector costs ~ ef_search / selectivity; equal near sqrt(8 * n * ef) (measured)."""
        if self.policy.filtered_exact_max is not None:
            return self.policy.filtered_exact_max
        return int(math.sqrt(8 * max(self.live, 1) * self.policy.hnsw.ef_search))

    def _allowed(
        self, index: EventIndex, names: list[str], since: float | None, until: float | None
    ) -> np.ndarray:
        """[ntotal] bool over the index's positions: the events the filter matches."""
        allowed = np.zeros(index.ntotal, dtype=bool)
        for s in names:
            part = self.parts[s]
            lo, hi, mask = part.window(since, until)
            fids = part.cols["fid"][lo:hi] if mask is None else part.cols["fid"][lo:hi][mask]
            pos = index.positions_of(fids)
            allowed[pos[pos >= 0]] = True
        return allowed

    def where(self, fid: int) -> tuple[StreamPartition, int] | None:
        """(partition, row) of a live event number."""
        stream = self.stream_of.get(fid)
        if stream is None:
            return None
        part = self.parts[stream]
        i = part.row_of(fid)
        return None if i < 0 else (part, i)

    def row_by_fid(self, fid: int) -> EventRow | None:
        stream = self.stream_of.get(fid)
        if stream is None:
            return None
        part = self.parts[stream]
        i = part.row_of(fid)
        return None if i < 0 else part.row(i)

    def vector(self, event_id: str) -> np.ndarray | None:
        found = self.locate(event_id)
        return None if found is None else found[0].vectors[found[1]].copy()

    def rows(self) -> list[EventRow]:
        return [part.row(int(i)) for part in self.parts.values() for i in part.live_rows()]
