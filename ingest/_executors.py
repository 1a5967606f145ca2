"""Run interval decoders concurrently and hand their outputs back in interval order.

At most `workers` intervals are in flight; each buffers at most `max_buffered` items, so a slow
consumer makes the workers wait (files block, they never drop). A worker's exception is
re-raised in the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

WorkerFn = Callable[..., Iterator[Any]]


class IntervalExecutor(Protocol):
    def map_ordered(
        self, fn: WorkerFn, target: str, intervals: Sequence[Any], *args: Any
    ) -> Iterator[Iterator[Any]]:
        """For each interval in order, an iterator over fn(target, interval, *args)."""
        ...


def make_executor(kind: str | IntervalExecutor, *, workers: int, max_buffered: int) -> IntervalExecutor:
    if not isinstance(kind, str):
        return kind
    if kind == "auto":
        import ray

        kind = "ray" if ray.is_initialized() else "threads"
    if kind == "ray":
        return RayExecutor(workers, max_buffered)
    if kind == "threads":
        return ThreadExecutor(workers, max_buffered)
    raise ValueError(f"executor must be 'auto', 'ray' or 'threads', got {kind!r}")


class _Done:
    pass


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ThreadExecutor:
    """Threads in this process. PyAV releases the GIL while decoding and converting."""

    def __init__(self, workers: int, max_buffered: int) -> None:
        self.workers = workers
        self.max_buffered = max_buffered

    def map_ordered(
        self, fn: WorkerFn, target: str, intervals: Sequence[Any], *args: Any
    ) -> Iterator[Iterator[Any]]:
        outputs: list[queue.Queue[Any]] = [queue.Queue(maxsize=self.max_buffered) for _ in intervals]
        stop = threading.Event()

        def put(out: queue.Queue[Any], item: Any) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def run(number: int) -> None:
            out = outputs[number]
            try:
                for item in fn(target, intervals[number], *args):
                    if not put(out, item):
                        return
            except BaseException as exc:
                put(out, _Failed(exc))
            finally:
                put(out, _Done())

        # Submission is FIFO, so an interval never waits for a thread held by a later one.
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="quickdecoder")
        for number in range(len(intervals)):
            pool.submit(run, number)
        try:
            for out in outputs:
                yield _drain(out)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)


def _drain(out: queue.Queue[Any]) -> Iterator[Any]:
    while True:
        item = out.get()
        if isinstance(item, _Done):
            return
        if isinstance(item, _Failed):
            raise item.exc
        yield item


class RayExecutor:
    """One Ray task per interval (a streaming generator), at most `workers` alive at a time.

    A task sends its frames in chunks of up to `_CHUNK_BYTES` (one Ray object each), not one object
    per frame: per-object overhead in the consumer was ~1 ms a frame, as much as decoding it.
    """

    def __init__(self, workers: int, max_buffered: int) -> None:
        self.workers = workers
        self.max_buffered = max_buffered

    def map_ordered(
        self, fn: WorkerFn, target: str, intervals: Sequence[Any], *args: Any
    ) -> Iterator[Iterator[Any]]:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        buffered_chunks = max(1, self.max_buffered // _CHUNK_ITEMS)
        task = ray.remote(_chunked).options(num_cpus=1, _generator_backpressure_num_objects=buffered_chunks)
        upcoming = iter(intervals)
        in_flight: deque[Any] = deque()

        def submit_next() -> None:
            interval = next(upcoming, None)
            if interval is not None:
                in_flight.append(task.remote(fn, target, interval, *args))  # type: ignore[call-arg]

        for _ in range(self.workers):
            submit_next()
        try:
            while in_flight:
                generator = in_flight.popleft()
                yield _owned_items(ray, generator)
                submit_next()
        finally:
            for generator in in_flight:
                ray.cancel(generator)


_CHUNK_BYTES = 8 << 20
_CHUNK_ITEMS = 16


def _chunked(fn: WorkerFn, *args: Any) -> Iterator[list[Any]]:
    """fn's items in lists of at most _CHUNK_ITEMS items or about _CHUNK_BYTES of arrays; anything
    that is not a frame (an interval's end) closes its chunk, so it is never held back."""
    chunk: list[Any] = []
    size = 0
    for item in fn(*args):
        chunk.append(item)
        is_frame = _is_frame(item)
        size += item[1].nbytes if is_frame else 0
        if not is_frame or size >= _CHUNK_BYTES or len(chunk) >= _CHUNK_ITEMS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _owned_items(ray: Any, generator: Any) -> Iterator[Any]:
    # Copy arrays out of the object store so frames held by consumers do not pin it.
    for ref in generator:
        for item in ray.get(ref):
            if _is_frame(item):
                item = (item[0], np.array(item[1], copy=True))
            yield item


def _is_frame(item: Any) -> bool:
    """A decoded (pts, rgb) item, as opposed to an interval's end."""
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], np.ndarray)
