"""The stream registry: which streams exist, their clock ("pts" for files, "wall" for live), options
(retention overrides, source URI, ...) and health.

Redis holds the registry so every process (API, writers, alert engine) sees it. A copy of the
entries is kept in `streams.json` under the bank's folder, written atomically, so a Redis that lost
its data is refilled and writers can check streams while Redis is down.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, cast

from .errors import InvalidEventError, StoreUnavailableError, UnknownStreamError
from .records import CLOCKS, Clock, StreamInfo
from .redis_store import RedisStore
from .wal import fsync_dir

log = logging.getLogger(__name__)
MAX_ID_CHARS = 512


def check_id(kind: str, value: object) -> str:
    """Ids are used in Redis keys, JSON and log records: non-empty text without control characters."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise InvalidEventError(
            f"{kind} must be a non-empty string of at most {MAX_ID_CHARS} characters, got {value!r}"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidEventError(f"{kind} must not hold control characters, got {value!r}")
    return value


class StreamRegistry:
    def __init__(self, path: Path, redis: RedisStore) -> None:
        self.path = path
        self.redis = redis
        self._lock = threading.Lock()
        self._streams: dict[str, StreamInfo] = self._read_local()
        self.refresh()

    def _read_local(self) -> dict[str, StreamInfo]:
        if not self.path.exists():
            return {}
        return {sid: StreamInfo(**v) for sid, v in json.loads(self.path.read_text()).items()}

    def _write_local(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({sid: info.as_dict() for sid, info in self._streams.items()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)

    def refresh(self) -> None:
        """Merge Redis's view in, and give Redis the entries it lacks (it may have lost them)."""
        try:
            remote = self.redis.get_streams()
        except StoreUnavailableError as exc:
            log.warning("stream registry: Redis unreachable, using the local copy (%s)", exc)
            return
        with self._lock:
            missing = [info for sid, info in self._streams.items() if sid not in remote]
            changed = any(self._streams.get(sid) != info for sid, info in remote.items())
            self._streams.update(remote)
            if changed:
                self._write_local()
        for info in missing:
            self.redis.put_stream(info)

    def register(self, stream_id: str, clock: str, options: dict[str, Any] | None = None) -> StreamInfo:
        """Add a stream, or return it if it exists with the same clock (options are updated)."""
        check_id("stream_id", stream_id)
        if clock not in CLOCKS:
            raise InvalidEventError(f"clock must be one of {CLOCKS}, got {clock!r}")
        json.dumps(options or {})  # options travel as JSON: fail here, not in Redis
        with self._lock:
            old = self._streams.get(stream_id)
            if old is not None and old.clock != clock:
                raise InvalidEventError(
                    f"stream {stream_id!r} is registered with clock {old.clock!r}, not {clock!r}"
                )
            created_wall_s = old.created_wall_s if old else time.time()
            info = StreamInfo(stream_id, cast(Clock, clock), dict(options or {}), created_wall_s)
            self.redis.put_stream(info)  # Redis first: if it is down, nothing changes
            self._streams[stream_id] = info
            self._write_local()
        return info

    def get(self, stream_id: str) -> StreamInfo:
        info = self._streams.get(stream_id)
        if info is None:
            self.refresh()  # registered by another process since we last looked?
            info = self._streams.get(stream_id)
        if info is None:
            known = ", ".join(sorted(self._streams)[:10]) or "none"
            raise UnknownStreamError(f"unknown stream {stream_id!r}; registered: {known}")
        return info

    def all(self) -> dict[str, StreamInfo]:
        return dict(self._streams)

    def remove(self, stream_id: str) -> None:
        with self._lock:
            self.redis.delete_stream(stream_id)
            self._streams.pop(stream_id, None)
            self._write_local()

    def option(self, stream_id: str, name: str, default: float | None) -> float | None:
        """A numeric per-stream override (e.g. disk_budget_bytes), else the default."""
        value = self._streams[stream_id].options.get(name) if stream_id in self._streams else None
        if value is None:
            return default
        value = float(value)
        return value if math.isfinite(value) else default
