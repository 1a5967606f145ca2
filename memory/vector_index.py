"""The FAISS index of one shard: exact (IndexFlatIP) or HNSW over unit vectors, inner product.

Rows are FAISS's own sequential positions; `ids[pos]` maps them to the shard's int64 event numbers,
which only grow, so `ids` stays ascending and a position is found by binary search. HNSW cannot
remove vectors, so deletion leaves a tombstone: the row stays in the graph (still useful for
navigation) and an `IDSelectorBitmap` over live rows keeps it out of results until a rebuild.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

IndexKind = Literal["flat", "hnsw"]


def _faiss():  # imported lazily: importing memory must stay cheap
    import faiss

    return faiss


@dataclass(frozen=True, slots=True)
class HnswParams:
    m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    ef_search_max: int = 2048


def choose_kind(requested: str, live_events: int, exact_max_events: int) -> IndexKind:
    """`auto` keeps small shards exact (cheap, recall 1) and moves to HNSW past the threshold."""
    if requested in ("flat", "hnsw"):
        return requested  # type: ignore[return-value]
    return "flat" if live_events <= exact_max_events else "hnsw"


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """[n] bool -> the byte layout of faiss.IDSelectorBitmap (bit i%8 of byte i//8)."""
    return np.packbits(mask, bitorder="little")


class EventIndex:
    """Not thread-safe by itself: the writer serialises mutations and lets searches share."""

    def __init__(self, dim: int, kind: IndexKind, hnsw: HnswParams) -> None:
        self.dim = dim
        self.kind: IndexKind = kind
        self.hnsw = hnsw
        self._index = self._new_faiss_index()
        self.ids = np.empty(0, dtype=np.int64)  # [ntotal] ascending event numbers
        self._alive = np.empty(0, dtype=bool)  # [ntotal]
        self._alive_bits: np.ndarray | None = None  # packed _alive, present while tombstones exist
        self.dead = 0
        # Rows only ever append within one generation; a rebuild starts a new one, so snapshots
        # write only the vectors added since the last snapshot of the same generation.
        self.generation = uuid.uuid4().hex[:12]
        self._storage = None  # the storage object when it was attached to a loaded graph

    def _new_faiss_index(self):
        faiss = _faiss()
        if self.kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.hnsw.ef_construction
        index.hnsw.efSearch = self.hnsw.ef_search
        return index

    @property
    def ntotal(self) -> int:
        return int(self.ids.shape[0])

    @property
    def live(self) -> int:
        return self.ntotal - self.dead

    @property
    def dead_fraction(self) -> float:
        return self.dead / self.ntotal if self.ntotal else 0.0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """ids: [n] int64 ascending and above every id held; vectors: [n, D] float32 unit norm."""
        if ids.shape[0] == 0:
            return
        if self.ntotal and ids[0] <= self.ids[-1]:
            raise ValueError(f"event numbers must grow: {ids[0]} after {self.ids[-1]}")
        self._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.ids = np.concatenate([self.ids, ids.astype(np.int64)])
        self._alive = np.concatenate([self._alive, np.ones(ids.shape[0], dtype=bool)])
        if self.dead:
            self._alive_bits = pack_mask(self._alive)

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """[n] positions of held ids; -1 where an id is not in the index."""
        if self.ntotal == 0:
            return np.full(ids.shape[0], -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), self.ntotal - 1)
        return np.where(self.ids[pos] == ids, pos, -1)

    def remove(self, ids: np.ndarray) -> int:
        """Tombstone ids; returns how many live rows died."""
        pos = self.positions_of(np.asarray(ids, dtype=np.int64))
        pos = pos[pos >= 0]
        pos = pos[self._alive[pos]]
        if pos.size:
            self._alive[pos] = False
            self.dead += int(pos.size)
            self._alive_bits = pack_mask(self._alive)
        return int(pos.size)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, selectivity: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """query: [D]; allowed: [ntotal] bool over positions (None: every live row).

        Returns (scores [<=k] float32 descending, ids [<=k] int64). A selector makes HNSW skip rows
        while walking the graph, so the beam is widened by 1/selectivity to keep recall.
        """
        if self.live == 0 or k <= 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        faiss = _faiss()
        bits = self._alive_bits if allowed is None else pack_mask(allowed & self._alive)
        sel = None if bits is None else faiss.IDSelectorBitmap(bits.shape[0], faiss.swig_ptr(bits))
        if self.kind == "hnsw":
            fraction = min(1.0, selectivity) * (1.0 - self.dead_fraction)
            ef = min(self.hnsw.ef_search_max, math.ceil(max(self.hnsw.ef_search, k) / max(fraction, 1e-6)))
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=int(ef))
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        scores, pos = self._index.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        keep = pos[0] >= 0
        return scores[0][keep], self.ids[pos[0][keep]]

    def search_exact(self, query: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the allowed live rows: FAISS's flat storage scanned with the selector."""
        faiss = _faiss()
        bits = pack_mask(allowed & self._alive)
        sel = faiss.IDSelectorBitmap(bits.shape[0], faiss.swig_ptr(bits))
        flat = faiss.downcast_index(self._index.storage) if self.kind == "hnsw" else self._index
        scores, pos = flat.search(
            query.reshape(1, -1).astype(np.float32), k, params=faiss.SearchParameters(sel=sel)
        )
        keep = pos[0] >= 0
        return scores[0][keep], self.ids[pos[0][keep]]

    def clone(self) -> EventIndex:
        """A deep copy (same generation: its rows only grow from here, like the original's)."""
        faiss = _faiss()
        twin = EventIndex(self.dim, self.kind, self.hnsw)
        twin._index = faiss.clone_index(self._index)
        if self.kind == "hnsw":
            twin._index.hnsw.efSearch = self.hnsw.ef_search
        twin.generation = self.generation
        twin.set_alive(self.ids.copy(), self._alive.copy())
        return twin

    def set_alive(self, ids: np.ndarray, alive: np.ndarray) -> None:
        """Replace the row ids and the live mask (rows must match the FAISS index)."""
        self.ids, self._alive = ids, alive
        self.dead = int((~alive).sum())
        self._alive_bits = pack_mask(alive) if self.dead else None

    def live_ids(self) -> np.ndarray:
        return self.ids[self._alive]

    def live_mask(self) -> np.ndarray:
        """[ntotal] bool, a copy: False for tombstones."""
        return self._alive.copy()

    def storage_view(self) -> np.ndarray:
        """[ntotal, D] float32 view of FAISS's own storage, no copy; valid until the next add."""
        if self.ntotal == 0:
            return np.empty((0, self.dim), np.float32)
        faiss = _faiss()
        flat = faiss.downcast_index(self._index.storage) if self.kind == "hnsw" else self._index
        return faiss.rev_swig_ptr(flat.get_xb(), self.ntotal * self.dim).reshape(self.ntotal, self.dim)

    # Persistence (memory/index_files.py): the graph, the rows, and the storage's vectors.
    def write_graph(self, path: Path) -> None:
        """The HNSW graph without its vectors (IO_FLAG_SKIP_STORAGE); flat indexes have none."""
        faiss = _faiss()
        faiss.write_index(self._index, str(path), faiss.IO_FLAG_SKIP_STORAGE)

    @classmethod
    def assemble(
        cls, dim: int, hnsw: HnswParams, graph: Path | None, vector_chunks: list[np.ndarray], ids: np.ndarray,
        alive: np.ndarray, generation: str,
    ) -> EventIndex:  # fmt: skip
        """An index from its parts: the graph file (None: flat) and its storage rows in order."""
        faiss = _faiss()
        storage = faiss.IndexFlatIP(dim)
        total = sum(int(c.shape[0]) for c in vector_chunks)
        # One allocation, filled in place: adding chunk by chunk regrows (and copies) the buffer.
        storage.codes.resize(total * dim * 4)
        buffer = faiss.rev_swig_ptr(storage.codes.data(), total * dim * 4) if total else None
        offset = 0
        for chunk in vector_chunks:
            raw = np.ascontiguousarray(chunk, dtype=np.float32).view(np.uint8).reshape(-1)
            buffer[offset : offset + raw.shape[0]] = raw  # type: ignore[index]
            offset += raw.shape[0]
        storage.ntotal = total
        self = cls(dim, "flat" if graph is None else "hnsw", hnsw)
        self.generation = generation
        if graph is not None:
            raw = faiss.read_index(str(graph))
            raw.storage = storage  # our reference keeps it alive; the graph does not own it
            raw.own_fields = False
            raw.hnsw.efSearch = hnsw.ef_search
            self._storage = storage
            self._index = raw
        else:
            self._index = storage
        if not ids.shape[0] == alive.shape[0] == storage.ntotal == self._index.ntotal:
            raise ValueError(f"index parts disagree: {ids.shape[0]} ids, {storage.ntotal} vectors")
        self.ids, self._alive = ids, alive
        self.dead = int((~alive).sum())
        self._alive_bits = pack_mask(alive) if self.dead else None
        return self


def build_index(
    dim: int, kind: IndexKind, hnsw: HnswParams, ids: np.ndarray, vectors: np.ndarray
) -> EventIndex:
    """A fresh index over live rows only (the rebuild that drops tombstones or changes kind)."""
    index = EventIndex(dim, kind, hnsw)
    order = np.argsort(ids, kind="stable")
    index.add(ids[order], vectors[order])
    return index
