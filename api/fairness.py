"""A fair turn-taking lock for the model: owners (API keys / connections) take turns round-robin, so
one client with many questions cannot make everyone else wait behind all of them."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairLock:
    """One holder at a time; when it lets go, the next turn goes to the owner after the last one
    served (in order of first arrival), taking that owner's oldest waiter."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._held = False

    @property
    def waiters(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    @asynccontextmanager
    async def turn(self, owner: str) -> AsyncIterator[None]:
        await self.acquire(owner)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, owner: str) -> None:
        if not self._held and not self._waiting:
            self._held = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(owner, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the turn was handed to us as we were cancelled: pass it on
            else:
                self._forget(owner, future)
            raise

    def release(self) -> None:
        while self._waiting:
            owner, queue = next(iter(self._waiting.items()))
            future = queue.popleft()
            # the owner goes to the back of the line (or leaves it when it has nobody else waiting)
            del self._waiting[owner]
            if queue:
                self._waiting[owner] = queue
            if not future.done():
                future.set_result(None)
                return
        self._held = False

    def _forget(self, owner: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(owner)
        if queue is not None and future in queue:
            queue.remove(future)
            if not queue:
                del self._waiting[owner]
