"""Streamed answers: an async iterator of text pieces, fed by a worker thread that runs the
prefill and the decode loop. `cancel()` stops the loop within one decode step."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

from memory.records import Hit

from .records import Answer, AnswerPiece

_END = object()

RunFn = Callable[[threading.Event, Callable[[AnswerPiece], None]], Answer]


class AnswerStream:
    """`async for piece in stream` yields AnswerPiece; `cited` is known at once; `answer` once done."""

    def __init__(
        self, run: RunFn, *, cited_from: Sequence[Any], on_done: Callable[[], None] | None = None
    ) -> None:
        from .session import _hit

        self.cited: list[Hit] = [_hit(c) for c in cited_from]
        self.answer: Answer | None = None
        self._run = run
        self._on_done = on_done
        self._cancel = threading.Event()
        self._queue: asyncio.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def __aiter__(self) -> AnswerStream:
        return self

    async def __anext__(self) -> AnswerPiece:
        if self._queue is None:
            self._start(asyncio.get_running_loop())
        assert self._queue is not None
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # later calls end too
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def result(self) -> Answer:
        """Drain the stream and return the final Answer."""
        async for _ in self:
            pass
        assert self.answer is not None
        return self.answer

    async def aclose(self) -> None:
        """Cancel and wait for the worker to stop."""
        self.cancel()
        if self._queue is not None:
            while (await self._queue.get()) is not _END:
                pass
            self._queue.put_nowait(_END)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue = queue

        def push(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                self.answer = self._run(self._cancel, push)
            except BaseException as exc:  # handed to the consumer, raised from __anext__
                self._error = exc
            finally:
                if self._on_done is not None:
                    self._on_done()
                push(_END)

        self._thread = threading.Thread(target=work, name="vidsight-answer", daemon=True)
        self._thread.start()
