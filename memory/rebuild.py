"""Rebuilding a shard's index in the background (exact -> HNSW past the threshold, or dropping
tombstones). The new index is built from a copy of the live vectors without any lock; changes made
meanwhile are recorded and replayed onto it just before the swap, under the writer's lock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from .shard import ShardMemory
from .vector_index import EventIndex, IndexKind

log = logging.getLogger(__name__)


class IndexRebuild:
    def __init__(
        self, kind: IndexKind, mem: ShardMemory, finish: Callable[[IndexRebuild, EventIndex | None], None]
    ) -> None:
        """Call under the writer's lock. `finish(rebuild, index)` is called from the rebuild thread
        with the new index (None when the build failed)."""
        self.kind = kind
        self._changes: list[tuple[str, np.ndarray, np.ndarray | None]] = []
        fids, vectors = mem.live_vectors()
        self.events = int(fids.shape[0])
        self._thread = threading.Thread(
            target=self._run, args=(mem, fids, vectors, finish), name="memory-rebuild", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def record_add(self, fids: np.ndarray, vectors: np.ndarray) -> None:
        self._changes.append(("add", fids, vectors))

    def record_remove(self, fids: np.ndarray) -> None:
        self._changes.append(("remove", fids, None))

    def catch_up(self, index: EventIndex) -> None:
        """Apply what changed since the build started (call under the writer's lock)."""
        for what, fids, vectors in self._changes:
            if what == "add":
                assert vectors is not None
                index.add(fids, vectors)
            else:
                index.remove(fids)
        self._changes.clear()

    def join(self, timeout_s: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self, mem: ShardMemory, fids: np.ndarray, vectors: np.ndarray, finish: Callable) -> None:
        try:
            index: EventIndex | None = mem.build(self.kind, fids, vectors)
        except Exception:
            log.exception("index rebuild (%s over %d events) failed", self.kind, fids.shape[0])
            index = None
        finish(self, index)


class CatchUp:
    """After recovery: insert the side index's events into a copy of the main index in the
    background, then `finish(job, grown)` swaps it in (the writer adds what came meanwhile)."""

    def __init__(self, mem: ShardMemory, finish: Callable[[CatchUp, EventIndex | None], None]) -> None:
        base, fids, vectors = mem.catch_up_start()
        self.events = int(fids.shape[0])
        self.upto_fid = int(fids.max()) if fids.shape[0] else -1
        self._thread = threading.Thread(
            target=self._run, args=(base, fids, vectors, finish), name="memory-catch-up", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def record_add(self, fids: np.ndarray, vectors: np.ndarray) -> None:
        """Nothing to record: while the side index exists, new events go there."""

    def record_remove(self, fids: np.ndarray) -> None:
        """Nothing to record: the swap keeps only live events."""

    def join(self, timeout_s: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self, base: EventIndex, fids: np.ndarray, vectors: np.ndarray, finish: Callable) -> None:
        try:
            grown: EventIndex | None = base.clone()
            assert grown is not None
            grown.add(fids, vectors)
        except Exception:
            log.exception("catching the index up with %d replayed events failed", fids.shape[0])
            grown = None
        finish(self, grown)
