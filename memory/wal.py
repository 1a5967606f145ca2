"""The replay log (write-ahead): an event is acknowledged only after its record is fsynced here.

Records go to segment files `<first lsn>.wal` in the shard's `wal/` folder. A record is a fixed
header (magic, lsn, kind, lengths, CRC-32 of everything after the header's CRC field) followed by a
JSON metadata part and an optional float32 vector. Appends are written with one `write` and one
`fdatasync` per batch (group commit). A crash can leave at most one torn record at the end of the
last segment: replay stops there and cuts it off; a bad record anywhere else is corruption.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorruptStoreError, DiskFullError

log = logging.getLogger(__name__)

MAGIC = b"VSWL"
_HEADER = struct.Struct("<4sQBIII")  # magic, lsn, kind, meta_len, vec_len, crc32
_CRC_PART = struct.Struct("<QBII")  # the header fields the CRC covers

ADD, DELETE, PIN = 1, 2, 3
KINDS = {ADD: "add", DELETE: "delete", PIN: "pin"}


@dataclass(frozen=True, slots=True)
class LogRecord:
    lsn: int
    kind: int  # ADD | DELETE | PIN
    meta: dict[str, Any]
    vector: np.ndarray | None = field(default=None, repr=False)  # [D] float32 for ADD


def encode(record: LogRecord) -> bytes:
    meta = json.dumps(record.meta, separators=(",", ":")).encode()
    vec = b"" if record.vector is None else np.ascontiguousarray(record.vector, dtype="<f4").tobytes()
    part = _CRC_PART.pack(record.lsn, record.kind, len(meta), len(vec))
    crc = zlib.crc32(vec, zlib.crc32(meta, zlib.crc32(part)))
    return _HEADER.pack(MAGIC, record.lsn, record.kind, len(meta), len(vec), crc) + meta + vec


def _decode_at(buf: memoryview, offset: int) -> tuple[LogRecord, int] | None:
    """The record at offset and the offset after it; None if it is torn or fails its checksum."""
    if len(buf) - offset < _HEADER.size:
        return None
    magic, lsn, kind, meta_len, vec_len, crc = _HEADER.unpack_from(buf, offset)
    end = offset + _HEADER.size + meta_len + vec_len
    if magic != MAGIC or kind not in KINDS or end > len(buf):
        return None
    meta = bytes(buf[offset + _HEADER.size : offset + _HEADER.size + meta_len])
    vec = bytes(buf[end - vec_len : end])
    if zlib.crc32(vec, zlib.crc32(meta, zlib.crc32(_CRC_PART.pack(lsn, kind, meta_len, vec_len)))) != crc:
        return None
    vector = np.frombuffer(vec, dtype="<f4").astype(np.float32) if vec_len else None
    return LogRecord(lsn, kind, json.loads(meta), vector), end


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ReplayLog:
    """One shard's log. Not thread-safe: the shard's single writer owns it."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None
        self._size = 0
        self.last_lsn = 0

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("*.wal"), key=lambda p: int(p.stem))

    def replay(self, after_lsn: int) -> Iterator[LogRecord]:
        """Records with lsn > after_lsn, in order. Cuts a torn tail off the last segment."""
        segments = self.segments()
        for i, path in enumerate(segments):
            data = path.read_bytes()
            buf, offset = memoryview(data), 0
            while offset < len(data):
                decoded = _decode_at(buf, offset)
                if decoded is None:
                    if i != len(segments) - 1:
                        raise CorruptStoreError(f"log segment {path} has a bad record at byte {offset}")
                    log.warning("cutting a torn record off %s at byte %d of %d", path, offset, len(data))
                    with open(path, "r+b") as f:
                        f.truncate(offset)
                        os.fsync(f.fileno())
                    break
                record, offset = decoded
                self.last_lsn = max(self.last_lsn, record.lsn)
                if record.lsn > after_lsn:
                    yield record

    def open_for_append(self, last_lsn: int) -> None:
        """Continue after `last_lsn` (from the snapshot and the replay), in a fresh segment."""
        self.last_lsn = max(self.last_lsn, last_lsn)
        self.rotate()

    def rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        path = self.directory / f"{self.last_lsn + 1:020d}.wal"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        fsync_dir(self.directory)

    def append(self, records: list[LogRecord]) -> None:
        """Write and fdatasync a batch. On failure the segment is cut back, so no torn record stays
        in the middle of the log, and DiskFullError (ENOSPC) or the OSError is raised."""
        if self._fd is None:
            raise RuntimeError("log is not open for appending")
        payload = b"".join(encode(r) for r in records)
        before = self._size
        try:
            view = memoryview(payload)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fdatasync(self._fd)
        except OSError as exc:
            self._cut_back(before)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DiskFullError(
                    f"no room for {len(payload)} log bytes in {self.directory}: {exc}"
                ) from exc
            raise
        self._size += len(payload)
        self.last_lsn = records[-1].lsn
        if self._size >= self.segment_bytes:
            self.rotate()

    def _cut_back(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)  # type: ignore[arg-type]
            os.fsync(self._fd)  # type: ignore[arg-type]
        except OSError as exc:  # the next open's replay cuts the torn tail instead
            log.warning("could not cut the log back to %d bytes: %s", size, exc)

    def drop_through(self, lsn: int) -> int:
        """Delete whole segments whose records are all <= lsn (covered by a snapshot)."""
        segments = self.segments()
        dropped = 0
        for path, nxt in itertools.pairwise(segments):
            if int(nxt.stem) - 1 <= lsn:
                path.unlink()
                dropped += 1
        if dropped:
            fsync_dir(self.directory)
        return dropped

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
