"""One stream's path from frames to events: static-patch test, encoders, compressor.

Plain Python: `vidsight.pipeline` runs it with the encoder in a Ray actor; tests and the CLI
run it in one process. The RLT pixel test runs BEFORE the encoder so that a frame whose every
patch is static is not encoded again (its embedding and tokens carry over).

The compressor runs next to the encoder (`EventStage`): in this process for a local encoder, in
the encoder's actor for a remote one, so that the tokens stay on the encoder's device and only
closed events cross a process boundary.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from compressor import Compressor, CompressorSettings, Event, StaticPatchFilter
from encoder import EncodedFrame
from ingest import Frame


class FrameEncoder(Protocol):
    """What the processor needs from the encoder stage (an `encoder.Encoder` or an actor proxy)."""

    def encode(
        self,
        frames: Sequence[Frame],
        skip: Sequence[bool] | None = None,
        static_masks: Sequence[np.ndarray | None] | None = None,
    ) -> list[EncodedFrame]: ...

    def flush(self, stream_id: str | None = None) -> list[EncodedFrame]: ...


@dataclass(frozen=True, slots=True)
class StageOutput:
    """What one call of an `EventEncoder` gives back: the events it closed, and where time went."""

    events: list[Event]
    encode_s: float  # waiting for the encoder (batching with other streams included)
    compress_s: float


@runtime_checkable
class EventEncoder(Protocol):
    """Encoder and compressor together, for many streams: frames in, closed events out.

    Calls for one stream run in the order they are made; the futures let a caller prepare its
    next batch while the last one is encoded.
    """

    def open_stream(self, stream_id: str, settings: CompressorSettings) -> None: ...

    def submit_events(
        self,
        stream_id: str,
        frames: Sequence[Frame],
        skip: Sequence[bool],
        static_masks: Sequence[np.ndarray | None],
    ) -> Future[StageOutput]: ...

    def flush_events(self, stream_id: str) -> Future[StageOutput]: ...


class EventStage:
    """An `EventEncoder` from a `FrameEncoder` and one `Compressor` per stream, in one process.

    With a CUDA device, the compressors' kernels go to a CUDA stream of their own, so their few
    host syncs (one per grid) never wait behind another stream's encoder batch. Thread-safe:
    concurrent calls for different streams run side by side.
    """

    def __init__(self, encoder: FrameEncoder, device: torch.device | str | None = None) -> None:
        self.encoder = encoder
        device = None if device is None else torch.device(device)
        self._cuda_stream = (
            torch.cuda.Stream(device) if device is not None and device.type == "cuda" else None
        )
        self._streams: dict[str, _OpenStream] = {}
        self._lock = threading.Lock()

    def open_stream(self, stream_id: str, settings: CompressorSettings) -> None:
        """Start (or restart) a stream's compressor."""
        with self._lock:
            self._streams[stream_id] = _OpenStream(Compressor(settings))

    def submit_events(
        self,
        stream_id: str,
        frames: Sequence[Frame],
        skip: Sequence[bool],
        static_masks: Sequence[np.ndarray | None],
    ) -> Future[StageOutput]:
        """Runs now, in the calling thread; the future is done when it returns."""
        state = self._stream(stream_id)
        with state.lock:
            for frame in frames:
                state.rgb_by_index[frame.index] = frame.rgb
            started = time.perf_counter()
            encoded = self.encoder.encode(frames, skip=skip, static_masks=static_masks)
            encoded_s = time.perf_counter()
            events = self._compress(state, encoded, is_closing=False)
            return _done(StageOutput(events, encoded_s - started, time.perf_counter() - encoded_s))

    def flush_events(self, stream_id: str) -> Future[StageOutput]:
        """End of the stream (or of a file): encode its lone waiting frame, close its open event."""
        state = self._stream(stream_id)
        with state.lock:
            started = time.perf_counter()
            encoded = self.encoder.flush(stream_id)
            encoded_s = time.perf_counter()
            events = self._compress(state, encoded, is_closing=True)
            state.rgb_by_index.clear()
            return _done(StageOutput(events, encoded_s - started, time.perf_counter() - encoded_s))

    def _stream(self, stream_id: str) -> _OpenStream:
        with self._lock:
            state = self._streams.get(stream_id)
        if state is None:
            raise ValueError(f"stream {stream_id!r} was not opened (open_stream first)")
        return state

    def _compress(self, state: _OpenStream, encoded: list[EncodedFrame], is_closing: bool) -> list[Event]:
        if self._cuda_stream is None:
            return _run_compressor(state, encoded, is_closing)
        side = self._cuda_stream
        for item in encoded:
            if isinstance(item.tokens, torch.Tensor) and item.tokens.is_cuda:
                item.tokens.record_stream(side)  # made on the encoder's stream, read and freed on ours
        with torch.cuda.stream(side):
            return _run_compressor(state, encoded, is_closing)


@dataclass
class _OpenStream:
    compressor: Compressor
    rgb_by_index: dict[int, np.ndarray] = field(default_factory=dict)  # frames waiting for their record
    lock: threading.Lock = field(default_factory=threading.Lock)


def _run_compressor(state: _OpenStream, encoded: list[EncodedFrame], is_closing: bool) -> list[Event]:
    events: list[Event] = []
    for item in encoded:
        events += state.compressor.process(item, state.rgb_by_index.pop(item.index, None))
    return events + state.compressor.flush() if is_closing else events


def _done(output: StageOutput) -> Future[StageOutput]:
    future: Future[StageOutput] = Future()
    future.set_result(output)
    return future


@dataclass(slots=True)
class StreamReport:
    """What one stream's processing did and saved."""

    stream_id: str
    frames: int = 0
    encoder_frames_skipped: int = 0
    events: int = 0
    tokens_in: int = 0
    tokens_kept: int = 0
    filter_s: float = 0.0
    encode_s: float = 0.0
    compress_s: float = 0.0
    event_list: list[Event] = field(default_factory=list, repr=False)

    @property
    def kept_ratio(self) -> float | None:
        return None if self.tokens_in == 0 else self.tokens_kept / self.tokens_in

    def to_dict(self) -> dict[str, object]:
        return {
            "stream_id": self.stream_id,
            "frames": self.frames,
            "events": self.events,
            "tokens_in": self.tokens_in,
            "tokens_kept": self.tokens_kept,
            "kept_ratio": None if self.kept_ratio is None else round(self.kept_ratio, 4),
            "encoder_frames_skipped": self.encoder_frames_skipped,
            "filter_s": round(self.filter_s, 3),
            "encode_s": round(self.encode_s, 3),
            "compress_s": round(self.compress_s, 3),
        }


class StreamProcessor:
    """Frames of ONE stream in, closed events out."""

    def __init__(
        self,
        stream_id: str,
        encoder: FrameEncoder | EventEncoder,
        settings: CompressorSettings,
        *,
        is_skipping_static: bool = True,
        filter_device: str | None = None,
        max_in_flight: int = 1,
    ) -> None:
        """is_skipping_static=False still reports static patches but encodes every frame (the
        baseline that static skipping is measured against). filter_device runs the pixel test
        on a GPU next to the encoder. An `EventEncoder` (the encoder's actor) compresses where
        it encodes; a plain `FrameEncoder` gets its compressor here. max_in_flight > 1 lets
        `process` return before its batch is encoded (up to that many batches in the encoder):
        its events come back from a later call or `flush`, and the next batch's pixel test and
        transfer overlap the encoder. For files; live streams want 1 (events without delay)."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.stream_id = stream_id
        self.encoder = encoder
        self.settings = settings
        self.is_skipping_static = is_skipping_static
        self.max_in_flight = max_in_flight
        self._stage: EventEncoder = encoder if isinstance(encoder, EventEncoder) else EventStage(encoder)
        self._stage.open_stream(stream_id, settings)
        self._filter = StaticPatchFilter(settings.patch_size, settings.static_tau, device=filter_device)
        self._in_flight: deque[Future[StageOutput]] = deque()
        self.report = StreamReport(stream_id)

    def process(self, frames: Sequence[Frame]) -> list[Event]:
        """Encode and compress a batch of this stream's frames; return the events that closed
        (with max_in_flight > 1, those of the batches that finished by now)."""
        if not frames:
            return []
        if any(f.stream_id != self.stream_id for f in frames):
            raise ValueError(f"StreamProcessor({self.stream_id!r}) got frames of another stream")
        started = time.perf_counter()
        skip, masks = [], []
        for decision in self._filter.process_many([frame.rgb for frame in frames]):
            skip.append(decision.is_frame_static and self.is_skipping_static)
            masks.append(decision.mask)
        self.report.filter_s += time.perf_counter() - started
        self.report.frames += len(frames)
        self.report.encoder_frames_skipped += sum(skip)
        self._in_flight.append(self._stage.submit_events(self.stream_id, frames, skip, masks))
        events: list[Event] = []
        while self._in_flight and (len(self._in_flight) >= self.max_in_flight or self._in_flight[0].done()):
            events += self._collect(self._in_flight.popleft())
        return events

    def flush(self) -> list[Event]:
        """End of the stream (or of a file): encode the lone waiting frame, close the open event."""
        events: list[Event] = []
        while self._in_flight:
            events += self._collect(self._in_flight.popleft())
        return events + self._collect(self._stage.flush_events(self.stream_id))

    def _collect(self, future: Future[StageOutput]) -> list[Event]:
        output = future.result()
        self.report.encode_s += output.encode_s
        self.report.compress_s += output.compress_s
        for event in output.events:
            self.report.events += 1
            self.report.tokens_in += event.stats.tokens_in
            self.report.tokens_kept += event.stats.tokens_kept
        return output.events
