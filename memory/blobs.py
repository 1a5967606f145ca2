"""Token blobs and thumbnails on disk, with a bounded in-memory cache of loaded blobs.

One safetensors file per event holds what the LLM later reads: tokens [N, D_llm] float16, positions
[N, 3] int32, counts [N] int32, grid_pts_s [T] float64 and, when the compressor kept them,
grid_embeddings [T, D] float16. Thumbnails are the event's JPEG bytes as files. Files are named by
the shard's event number (not by stream or event id, which may hold any characters), in folders of
10,000, and are written to a temporary name, fsynced and renamed, so a crash never leaves a half
file under a final name. A crashed add that never reached the log leaves a file under an event
number that the next add reuses (and overwrites), or that `sweep` removes.
"""

from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import DiskFullError
from .wal import fsync_dir

_PER_FOLDER = 10_000
ARRAYS = ("tokens", "positions", "counts", "grid_pts_s", "grid_embeddings")


def _is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class BlobStore:
    def __init__(self, root: Path, cache_bytes: int) -> None:
        self.root = root
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()  # the cache is shared by concurrent readers

    def folder(self, fid: int) -> Path:
        return self.root / f"{fid // _PER_FOLDER:07d}"

    def blob_path(self, fid: int) -> Path:
        return self.folder(fid) / f"{fid}.safetensors"

    def thumbnail_path(self, fid: int, i: int = 0) -> Path:
        return self.folder(fid) / f"{fid}.{i}.jpg"

    @staticmethod
    def encode(arrays: dict[str, np.ndarray]) -> bytes:
        from safetensors.numpy import save

        return save({k: np.ascontiguousarray(v) for k, v in arrays.items()})

    def write(self, fid: int, blob: bytes | None, thumbnails: list[bytes]) -> list[Path]:
        """Write (durably) an event's files; returns them. Removes what it wrote if it fails."""
        files: list[tuple[Path, bytes]] = [(self.thumbnail_path(fid, i), t) for i, t in enumerate(thumbnails)]
        if blob is not None:
            files.append((self.blob_path(fid), blob))
        written: list[Path] = []
        try:
            self.folder(fid).mkdir(parents=True, exist_ok=True)
            for path, data in files:
                _write_durably(path, data)
                written.append(path)
        except OSError as exc:
            for path in written:
                path.unlink(missing_ok=True)
            if _is_disk_full(exc):
                raise DiskFullError(
                    f"no room for event #{fid}'s {sum(len(d) for _, d in files)} bytes: {exc}"
                ) from exc
            raise
        return written

    def sync_folders(self, fids: Iterable[int]) -> None:
        """Make the renames durable (once per folder per batch)."""
        for folder in {self.folder(f) for f in fids}:
            if folder.exists():
                fsync_dir(folder)

    def read(self, fid: int) -> dict[str, np.ndarray]:
        with self._lock:
            hit = self._cache.get(fid)
            if hit is not None:
                self._cache.move_to_end(fid)
                return hit
        from safetensors.numpy import load_file

        arrays = load_file(str(self.blob_path(fid)))
        self._remember(fid, arrays)
        return arrays

    def _remember(self, fid: int, arrays: dict[str, np.ndarray]) -> None:
        size = sum(a.nbytes for a in arrays.values())
        if size > self.cache_bytes:
            return
        with self._lock:
            self._cache[fid] = arrays
            self._cached_bytes += size
            while self._cached_bytes > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= sum(a.nbytes for a in old.values())

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def delete(self, fid: int, n_thumbs: int) -> None:
        """Remove an event's files (missing files are fine: deletion is replayed after a crash)."""
        with self._lock:
            old = self._cache.pop(fid, None)
            if old is not None:
                self._cached_bytes -= sum(a.nbytes for a in old.values())
        self.blob_path(fid).unlink(missing_ok=True)
        for i in range(n_thumbs):
            self.thumbnail_path(fid, i).unlink(missing_ok=True)

    def sweep(self, next_fid: int) -> int:
        """Delete files of event numbers >= next_fid (crashed adds that never reached the log)."""
        removed = 0
        if not self.root.exists():
            return 0
        for folder in self.root.iterdir():
            if not folder.is_dir() or (int(folder.name) + 1) * _PER_FOLDER <= next_fid:
                continue
            for path in folder.iterdir():
                if int(path.name.split(".", 1)[0]) >= next_fid or path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def disk_bytes(self) -> int:
        if not self.root.exists():
            return 0
        return sum(p.stat().st_size for folder in self.root.iterdir() for p in folder.iterdir())


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
