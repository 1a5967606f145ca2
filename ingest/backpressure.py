"""Bounded buffers between a live reader and its consumer, and reconnect pacing."""

from __future__ import annotations

import queue
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):
    """The queue was closed and holds nothing more."""


class DropOldestQueue(Generic[T]):
    """A bounded FIFO whose `put` never blocks: when full, the oldest item is dropped and counted.

    A slow consumer then sees the newest frames, late frames are lost instead of piling up, and
    the live stream never falls behind real time because of the consumer.
    """

    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        self.max_items = max_items
        self._items: deque[T] = deque()
        self._ready = threading.Condition()
        self._is_closed = False
        self.dropped = 0

    def put(self, item: T) -> int:
        """Append; return how many items were dropped to make room (0 or 1)."""
        with self._ready:
            if self._is_closed:
                raise QueueClosed("put on a closed queue")
            dropped = 0
            if len(self._items) >= self.max_items:
                self._items.popleft()
                dropped = 1
                self.dropped += 1
            self._items.append(item)
            self._ready.notify()
            return dropped

    def get(self, timeout_s: float | None = None) -> T:
        """The oldest item. Raises queue.Empty on timeout, QueueClosed once closed and drained."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._items or self._is_closed, timeout=timeout_s):
                raise queue.Empty
            if self._items:
                return self._items.popleft()
            raise QueueClosed("queue closed")

    def close(self) -> None:
        """No more puts; getters drain what is left, then see QueueClosed. Idempotent."""
        with self._ready:
            self._is_closed = True
            self._ready.notify_all()

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)


@dataclass
class Backoff:
    """Exponential backoff with "equal jitter": the delay is drawn from [d/2, d] with
    d = min(cap, base * 2**(failures - 1)), so reconnects spread out but never collapse to 0."""

    base_s: float
    cap_s: float
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError(f"need 0 < base_s <= cap_s, got base_s={self.base_s}, cap_s={self.cap_s}")

    def delay_s(self, failures: int) -> float:
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(failures - 1, 60))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)
