"""Fan-out of alert messages to in-process subscribers (WebSocket clients of /v1/live).

Each subscriber has a bounded queue. Publishing never waits: when a subscriber's queue is full,
its oldest message goes and the subscriber is told how many it lost (a `dropped` message ahead of
the next one it reads), so a slow client loses messages instead of slowing the engine or others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from .models import AlertMessage


class Subscription:
    """An async iterator of messages; `close()` (or leaving `async with`) unsubscribes."""

    def __init__(self, hub: AlertHub, size: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[AlertMessage | None] = asyncio.Queue(maxsize=size)
        self.dropped = 0  # lost since the last `dropped` notice
        self.dropped_total = 0
        self.is_closed = False

    def offer(self, message: AlertMessage) -> None:
        if self.is_closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            self.dropped_total += 1
        self._queue.put_nowait(message)

    def __aiter__(self) -> AsyncIterator[AlertMessage]:
        return self

    async def __anext__(self) -> AlertMessage:
        if self.dropped:
            count, self.dropped = self.dropped, 0
            return AlertMessage(type="dropped", dropped=count, sent_s=time.time())
        if self.is_closed and self._queue.empty():
            raise StopAsyncIteration
        message = await self._queue.get()
        if message is None:
            raise StopAsyncIteration
        return message

    def close(self) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        self._hub._remove(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)  # wakes a reader waiting in __anext__

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AlertHub:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self.queue_size)
        self._subscribers.add(sub)
        return sub

    def publish(self, message: AlertMessage) -> None:
        """Never blocks; must be called on the event loop that the subscribers read on."""
        for sub in list(self._subscribers):
            sub.offer(message)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
