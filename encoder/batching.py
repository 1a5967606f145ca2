"""Batching across streams: many callers, one model call per batch (max batch, max wait).

Plain threads and futures, no Ray: the pipeline wraps one `BatchingEncoder` in a GPU actor and
forwards each stream's `submit` to it (`await asyncio.wrap_future(...)` in an async actor). A
single worker thread owns the `Encoder`, so its per-stream state needs no lock.

A batch starts with the first waiting request and closes when it holds `max_batch_frames` frames
or `max_wait_s` has passed since that request arrived, whichever is first. When a batch fails, its
requests are run again one by one, so a bad frame fails only the request that brought it (the
Encoder refuses bad frames before it changes any stream state).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from .encoder import Encoder
from .errors import EncoderError
from .records import EncodedFrame

if TYPE_CHECKING:
    from ingest import Frame


@dataclass
class _Request:
    frames: list[Frame]
    skip: list[bool]
    masks: list[np.ndarray | None]
    pixels: list[torch.Tensor | None]  # per frame: its pixels already on the device, or None
    future: Future[list[EncodedFrame]] = field(default_factory=Future)
    flush_stream: str | None = None
    is_flush: bool = False


_STOP = object()


class BatchingEncoder:
    def __init__(self, encoder: Encoder, *, max_batch_frames: int, max_wait_s: float) -> None:
        if max_batch_frames < 1 or max_wait_s < 0:
            raise ValueError(
                f"need max_batch_frames >= 1 and max_wait_s >= 0, got {max_batch_frames}, {max_wait_s}"
            )
        self.encoder = encoder
        self.max_batch_frames = max_batch_frames
        self.max_wait_s = max_wait_s
        self.batches_run = 0  # model calls made, for tests and metrics
        self._queue: queue.Queue[_Request | object] = queue.Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name="encoder-batching", daemon=True)
        self._worker.start()

    @classmethod
    def from_encoder(cls, encoder: Encoder) -> BatchingEncoder:
        settings = encoder.settings
        return cls(encoder, max_batch_frames=settings.max_batch_frames, max_wait_s=settings.max_wait_s)

    def submit(
        self,
        frames: Sequence[Frame],
        skip: Sequence[bool] | None = None,
        static_masks: Sequence[np.ndarray | None] | None = None,
        pixels: Sequence[torch.Tensor | None] | None = None,
    ) -> Future[list[EncodedFrame]]:
        """Queue frames (any streams); the future gives the EncodedFrames this request completed.

        A pair whose first frame came in an earlier request is returned to the request that
        brought its second frame. pixels: as for `Encoder.encode`.
        """
        n = len(frames)
        request = _Request(
            list(frames),
            [False] * n if skip is None else list(skip),
            [None] * n if static_masks is None else list(static_masks),
            [None] * n if pixels is None else list(pixels),
        )
        return self._put(request)

    def flush(self, stream_id: str | None = None) -> Future[list[EncodedFrame]]:
        """Encode the waiting lone frame of one stream (or all), after everything queued before."""
        return self._put(_Request([], [], [], [], flush_stream=stream_id, is_flush=True))

    def close(self) -> None:
        """Stop the worker; requests still queued fail with EncoderError. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._worker.join()

    def _put(self, request: _Request) -> Future[list[EncodedFrame]]:
        if self._closed:
            raise EncoderError("BatchingEncoder is closed")
        self._queue.put(request)
        return request.future

    # worker ------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                break
            assert isinstance(first, _Request)
            if first.is_flush:
                self._run_flush(first)
                continue
            batch, stop = self._collect(first)
            self._run_batch(batch)
            if stop:
                break
        self._fail_queued()

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        """Requests for one batch; a flush or stop marker ends the batch and is handled after it."""
        batch = [first]
        frames = len(first.frames)
        deadline = time.monotonic() + self.max_wait_s
        while frames < self.max_batch_frames:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            assert isinstance(item, _Request)
            if item.is_flush:
                self._run_batch(batch)
                self._run_flush(item)
                return [], False
            batch.append(item)
            frames += len(item.frames)
        return batch, False

    def _run_batch(self, batch: list[_Request]) -> None:
        if not batch:
            return
        frames = [f for r in batch for f in r.frames]
        try:
            records = self.encoder.encode(
                frames,
                [s for r in batch for s in r.skip],
                [m for r in batch for m in r.masks],
                [x for r in batch for x in r.pixels],
            )
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
            else:
                for request in batch:
                    self._run_batch([request])
            return
        self.batches_run += 1
        owner = {(f.stream_id, f.index): i for i, r in enumerate(batch) for f in r.frames}
        results: list[list[EncodedFrame]] = [[] for _ in batch]
        for i, record in enumerate(records):
            key = (record.stream_id, record.index)
            if key not in owner:  # first frame of a pair from an earlier request: goes with its partner
                partner = records[i + 1]
                key = (partner.stream_id, partner.index)
            results[owner[key]].append(record)
        for request, result in zip(batch, results, strict=True):
            request.future.set_result(result)

    def _run_flush(self, request: _Request) -> None:
        try:
            request.future.set_result(self.encoder.flush(request.flush_stream))
        except Exception as exc:
            request.future.set_exception(exc)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Request):
                item.future.set_exception(EncoderError("BatchingEncoder closed before this request ran"))
