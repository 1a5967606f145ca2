"""Read operations of a shard: search, events, their ids; concurrent with each other (read lock),
excluded only while the writer changes memory. `MemoryWriter` adds the changes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from compressor.records import Event

from .blobs import BlobStore
from .codec import to_event, unit_vector
from .errors import BankClosedError, UnknownEventError
from .partitions import EventRow, StreamPartition
from .records import Hit
from .registry import StreamRegistry
from .rwlock import ReadWriteLock
from .shard import ShardMemory
from .timefilter import check_k, check_window


class ShardReader:
    directory: Path
    shard: int
    mem: ShardMemory
    blobs: BlobStore
    registry: StreamRegistry
    _rw: ReadWriteLock
    _closed: bool

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

    def stream_bytes(self, stream_id: str) -> int:
        with self._rw.read():
            part = self.mem.parts.get(stream_id)
            return 0 if part is None else int(part.cols["bytes"][part.live_rows()].sum())

    def _check_open(self) -> None:
        if self._closed:
            raise BankClosedError(f"shard {self.shard} in {self.directory} is closed")
