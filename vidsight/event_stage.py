"""The per-frame work next to the encoder: pixel test, encoder, compressor, for many streams.

`EventStage` runs where the encoder runs (in this process for a local encoder, inside the
encoder's Ray actor for a remote one), so the frames go to the device once, the tokens never
leave it, and only closed events cross a process boundary.

Each call of a stream passes three steps in order: the RLT pixel test (on the device, one host
sync per batch), the encoder (batched with other streams), the compressor. A stream's calls take
each step in their order (numbered by the caller, or in arrival order), but call k+1 may run its
pixel test while call k is encoded, and be encoded while call k is compressed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from compressor import Compressor, CompressorSettings, Event, StaticPatchFilter, warm_kernels
from encoder import EncodedFrame
from encoder.qwen_preprocess import upload_frames
from ingest import Frame


class FrameEncoder(Protocol):
    """What the stage needs from the encoder (an `encoder.Encoder` or an actor proxy). pixels: each
    frame's [H, W, 3] uint8 already on the encoder's device (the pixel test put it there), or None;
    an encoder in another process is never given any."""

    def encode(
        self,
        frames: Sequence[Frame],
        skip: Sequence[bool] | None = None,
        static_masks: Sequence[np.ndarray | None] | None = None,
        pixels: Sequence[torch.Tensor | None] | None = None,
    ) -> list[EncodedFrame]: ...

    def flush(self, stream_id: str | None = None) -> list[EncodedFrame]: ...


@dataclass(frozen=True, slots=True)
class StageOutput:
    """What one call of an `EventEncoder` gives back: the events it closed, and where time went."""

    events: list[Event]
    frames_skipped: int = 0  # frames the pixel test found all static (encoder not run)
    filter_s: float = 0.0  # the pixel test
    encode_s: float = 0.0  # waiting for the encoder (batching with other streams included)
    compress_s: float = 0.0


@runtime_checkable
class EventEncoder(Protocol):
    """Pixel test, encoder and compressor together, for many streams: frames in, events out.

    A stream's calls run in the order they are made; the futures let a caller send its next
    batch while the last one is being worked on.
    """

    def open_stream(
        self, stream_id: str, settings: CompressorSettings, *, is_skipping_static: bool = True
    ) -> None: ...

    def submit_events(self, stream_id: str, frames: Sequence[Frame]) -> Future[StageOutput]: ...

    def flush_events(self, stream_id: str) -> Future[StageOutput]: ...


class EventStage:
    """An `EventEncoder` over a `FrameEncoder`, with a pixel test and a Compressor per stream.

    device: where the pixel test runs (the encoder's GPU; None or the CPU: numpy on the host). On CUDA the
    pixel test and the compressors use a CUDA stream of their own, so their few host syncs never
    wait behind an encoder batch. Thread-safe: calls for different streams run side by side.
    """

    def __init__(self, encoder: FrameEncoder, device: torch.device | str | None = None) -> None:
        self.encoder = encoder
        # On the CPU the numpy pixel test is ~10x faster than torch's, and there is nothing to upload.
        self.device = None if device is None or torch.device(device).type == "cpu" else torch.device(device)
        is_cuda = self.device is not None and self.device.type == "cuda"
        # High priority: its small kernels go ahead of the encoder's when SMs free up, so its
        # host syncs do not wait for whole encoder batches.
        self._cuda_stream = torch.cuda.Stream(self.device, priority=-1) if is_cuda else None
        self._streams: dict[str, _OpenStream] = {}
        self._lock = threading.Lock()

    def warmup(
        self,
        frame_hw: tuple[int, int],
        grid_hw: tuple[int, int],
        token_dim: int,
        settings: CompressorSettings | None = None,
    ) -> None:
        """Compile the pixel test's and the merge's GPU kernels for these sizes now, not in the first
        stream's first batch (`compressor.warm_kernels`). Nothing to do off CUDA."""
        device = self.device
        if self._cuda_stream is not None and device is not None:
            self._on_side_stream(lambda: warm_kernels(device, frame_hw, grid_hw, token_dim, settings))

    def open_stream(
        self, stream_id: str, settings: CompressorSettings, *, is_skipping_static: bool = True
    ) -> None:
        """Start (or restart) a stream. is_skipping_static=False still reports static patches but
        encodes every frame (the baseline that static skipping is measured against)."""
        patch_filter = StaticPatchFilter(settings.patch_size, settings.static_tau, device=self.device)
        with self._lock:
            self._streams[stream_id] = _OpenStream(Compressor(settings), patch_filter, is_skipping_static)

    def submit_events(
        self, stream_id: str, frames: Sequence[Frame], seq: int | None = None
    ) -> Future[StageOutput]:
        """Runs in the calling thread; the future is done when it returns. seq: the call's number
        in its stream (from 0 at open_stream); default: calls are numbered as they arrive."""
        state = self._stream(stream_id, frames)
        tested, events, seconds = self._run(
            state,
            seq,
            lambda _: self._on_side_stream(lambda: _pixel_test(state, frames, self.device)),
            lambda tested: _encode(self.encoder, state, frames, tested),
            lambda encoded: self._on_side_stream(lambda: _compress(state, encoded, is_closing=False)),
        )
        return _done(StageOutput(events, sum(tested.skip), *seconds))

    def flush_events(self, stream_id: str, seq: int | None = None) -> Future[StageOutput]:
        """End of the stream (or of a file): encode its lone waiting frame, close its open event."""
        state = self._stream(stream_id, ())
        _, events, seconds = self._run(
            state,
            seq,
            lambda _: ([], []),
            lambda _: _flush_encoder(self.encoder, state, stream_id),
            lambda encoded: self._on_side_stream(lambda: _compress(state, encoded, is_closing=True)),
        )
        return _done(StageOutput(events, 0, *seconds))

    def _run(
        self, state: _OpenStream, seq: int | None, *steps: Callable[[Any], Any]
    ) -> tuple[Any, Any, list[float]]:
        """Pixel test, encoder, compressor, each in the stream's turn; (first result, last result,
        seconds per step)."""
        seq = state.turns.take() if seq is None else seq
        values: list[Any] = [None]
        seconds: list[float] = []
        step = 0
        try:
            for step, run in enumerate(steps):
                state.turns.enter(seq, step)
                try:
                    started = time.perf_counter()
                    values.append(run(values[-1]))
                    seconds.append(time.perf_counter() - started)
                finally:
                    state.turns.leave(seq, step)
        except BaseException:
            for later in range(step + 1, len(steps)):  # let the stream's next calls through
                state.turns.enter(seq, later)
                state.turns.leave(seq, later)
            raise
        return values[1], values[-1], seconds

    def _stream(self, stream_id: str, frames: Sequence[Frame]) -> _OpenStream:
        if any(f.stream_id != stream_id for f in frames):
            raise ValueError(f"frames of another stream in a call for {stream_id!r}")
        with self._lock:
            state = self._streams.get(stream_id)
        if state is None:
            raise ValueError(f"stream {stream_id!r} was not opened (open_stream first)")
        return state

    def _on_side_stream(self, call: Callable[[], Any]) -> Any:
        if self._cuda_stream is None:
            return call()
        with torch.cuda.stream(self._cuda_stream):
            return call()


_Pixels = tuple[np.ndarray | None, torch.Tensor | None]  # a frame's rgb, and its copy on the device


@dataclass
class _OpenStream:
    compressor: Compressor
    patch_filter: StaticPatchFilter
    is_skipping_static: bool
    # frames waiting for their record: (rgb, on the device or None) by Frame.index
    pixels_by_index: dict[int, _Pixels] = field(default_factory=dict)
    turns: _Turns = field(default_factory=lambda: _Turns(3))


class _Turns:
    """Tickets per step: call `seq` enters step i once call seq-1 has left it."""

    def __init__(self, steps: int) -> None:
        self._left = [0] * steps  # calls that have left each step
        self._taken = 0
        self._cond = threading.Condition()

    def take(self) -> int:
        with self._cond:
            self._taken += 1
            return self._taken - 1

    def enter(self, seq: int, step: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._left[step] == seq)

    def leave(self, seq: int, step: int) -> None:
        with self._cond:
            self._left[step] = seq + 1
            self._cond.notify_all()


@dataclass(frozen=True, slots=True)
class _Tested:
    """A batch after the pixel test: what the encoder and the compressor take from it."""

    skip: list[bool]  # every patch static (and skipping on): the encoder carries the frame over
    masks: list[np.ndarray]
    pixels: list[torch.Tensor | None]  # each frame on the device: for the encoder and thumbnails


def _pixel_test(state: _OpenStream, frames: Sequence[Frame], device: torch.device | None) -> _Tested:
    """On a device, the batch goes over once: the pixel test, the encoder and the keyframe
    thumbnails all read that copy."""
    rgbs = [frame.rgb for frame in frames]
    batch = upload_frames(rgbs, device) if device is not None and len({r.shape for r in rgbs}) == 1 else None
    decisions = state.patch_filter.process_many(rgbs if batch is None else batch)
    skip = [d.is_frame_static and state.is_skipping_static for d in decisions]
    pixels = [None] * len(rgbs) if batch is None else list(batch)
    return _Tested(skip, [d.mask for d in decisions], pixels)  # type: ignore[arg-type]


def shrink_frames(batch: torch.Tensor, longest_px: int) -> np.ndarray:
    """[B, H, W, 3] uint8 on any device -> [B, h, w, 3] uint8 on the host, the longer side at most
    `longest_px`, each output pixel the mean of the pixels it covers (area resampling)."""
    height, width = batch.shape[1:3]
    scale = longest_px / max(height, width)
    if scale >= 1:
        return batch.cpu().numpy()  # type: ignore[no-any-return]
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = F.interpolate(batch.permute(0, 3, 1, 2).float(), size=size, mode="area")
    return small.round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()  # type: ignore[no-any-return]


def grid_thumbnails(
    records: Sequence[EncodedFrame], rows: Sequence[torch.Tensor | None], longest_px: int
) -> list[np.ndarray | None]:
    """Keyframe candidates for the compressor: each grid's first frame (the one carrying its tokens)
    shrunk (`shrink_frames`) from its copy on the device, rows[k] for records[k]; None for the other
    frames and for frames with no copy there."""
    out: list[np.ndarray | None] = [None] * len(records)
    firsts = [k for k, r in enumerate(records) if r.tokens is not None and rows[k] is not None]
    if firsts:
        small = shrink_frames(torch.stack([rows[k] for k in firsts]), longest_px)  # type: ignore[misc]
        for k, thumbnail in zip(firsts, small, strict=True):
            out[k] = thumbnail
    return out


def _encode(
    encoder: FrameEncoder, state: _OpenStream, frames: Sequence[Frame], tested: _Tested
) -> tuple[list[EncodedFrame], list[_Pixels]]:
    for frame, row in zip(frames, tested.pixels, strict=True):
        state.pixels_by_index[frame.index] = (frame.rgb, row)
    pixels = None if all(p is None for p in tested.pixels) else tested.pixels
    if pixels is not None and pixels[0] is not None and pixels[0].is_cuda:
        # uploaded on the stage's CUDA stream, read on the encoder's: not to be reused before that
        pixels[0].record_stream(torch.cuda.current_stream(pixels[0].device))
    encoded = encoder.encode(frames, skip=tested.skip, static_masks=tested.masks, pixels=pixels)
    return encoded, [state.pixels_by_index.pop(item.index, (None, None)) for item in encoded]


def _flush_encoder(
    encoder: FrameEncoder, state: _OpenStream, stream_id: str
) -> tuple[list[EncodedFrame], list[_Pixels]]:
    encoded = encoder.flush(stream_id)
    pixels = [state.pixels_by_index.pop(item.index, (None, None)) for item in encoded]
    state.pixels_by_index.clear()
    return encoded, pixels


def _compress(
    state: _OpenStream, encoded: tuple[list[EncodedFrame], list[_Pixels]], is_closing: bool
) -> list[Event]:
    records, pixels = encoded
    side = torch.cuda.current_stream() if torch.cuda.is_available() else None
    for item in records:
        if side is not None and isinstance(item.tokens, torch.Tensor) and item.tokens.is_cuda:
            item.tokens.record_stream(side)  # made on the encoder's stream, read and freed on this one
    settings = state.compressor.settings
    thumbnails: list[np.ndarray | None] = [None] * len(records)
    if settings.thumbnails_per_event:
        thumbnails = grid_thumbnails(records, [row for _, row in pixels], settings.thumbnail_px)
    events = state.compressor.process_many(records, [rgb for rgb, _ in pixels], thumbnails)
    return events + state.compressor.flush() if is_closing else events


def _done(output: StageOutput) -> Future[StageOutput]:
    future: Future[StageOutput] = Future()
    future.set_result(output)
    return future


class BatcherEncoder:
    """`FrameEncoder` over a BatchingEncoder: synchronous calls that join the batcher's batches."""

    def __init__(self, batcher: Any) -> None:
        self.batcher = batcher

    def encode(
        self,
        frames: Sequence[Frame],
        skip: Sequence[bool] | None = None,
        static_masks: Sequence[np.ndarray | None] | None = None,
        pixels: Sequence[torch.Tensor | None] | None = None,
    ) -> list[EncodedFrame]:
        return list(self.batcher.submit(frames, skip, static_masks, pixels).result())

    def flush(self, stream_id: str | None = None) -> list[EncodedFrame]:
        return list(self.batcher.flush(stream_id).result())
