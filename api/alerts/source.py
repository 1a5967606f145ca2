"""What the alert engine needs of the memory bank, in one place.

`memory.MemoryBank` has get_event, pin, follow and streams. Listing a stream's events in a time
window (for backtests) reads the bank's per-stream sorted set in Redis (score = start on the
stream's clock) until the bank has a public call for it (`event_ids(stream_id, since, until)`,
used when present); the first start reads the newest entry id of that stream the same way
(`last_entry_id()` when the bank has it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from compressor.records import Event
from memory.records import StreamEntry

from .errors import InvalidAlertError


class MemoryLike(Protocol):
    def get_event(self, event_id: str) -> Event: ...

    def pin(self, event_id: str, pinned: bool = True) -> None: ...

    def follow(self, last_id: str = "$", block_ms: int = 1000, count: int = 100) -> Sequence[StreamEntry]: ...

    def streams(self) -> dict[str, Any]: ...


def check_window(since: float | None, until: float | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and not math.isfinite(value):
            raise InvalidAlertError(f"{name} must be a finite number of seconds, got {value!r}")
    if since is not None and until is not None and since >= until:
        raise InvalidAlertError(f"since must be before until, got since={since} until={until}")


def stream_tip(memory: Any) -> str | None:
    """Id of the newest entry of the bank's new-event stream ("0-0" when empty; None when unknown), so
    a first start judges exactly the events that come after it, however soon they come."""
    if hasattr(memory, "last_entry_id"):
        return str(memory.last_entry_id() or "0-0")
    store = getattr(memory, "redis", None)
    if store is None or not hasattr(store, "events_stream_key"):
        return None
    key = store.events_stream_key
    newest = store.call("read stream tip", lambda c: c.xrevrange(key, count=1))
    if not newest:
        return "0-0"
    entry_id = newest[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def event_ids_by_start(memory: Any, stream_id: str, lo: float | None, hi: float | None) -> list[str]:
    """Ids of the stream's events whose start lies in [lo, hi) on the stream's clock, oldest first."""
    if hasattr(memory, "event_ids"):
        return list(memory.event_ids(stream_id, lo, hi))
    store = getattr(memory, "redis", None)
    if store is None or not hasattr(store, "stream_events_key"):
        raise InvalidAlertError("backtests need a memory bank that can list a stream's events by time")
    key = store.stream_events_key(stream_id)
    low = "-inf" if lo is None else repr(float(lo))
    high = "+inf" if hi is None else f"({float(hi)!r}"
    raw = store.call("list stream events", lambda c: c.zrangebyscore(key, low, high))
    return [r.decode() if isinstance(r, bytes) else str(r) for r in raw]
