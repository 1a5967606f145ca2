"""One stream's path from frames to events: static-patch test, encoders, compressor.

Plain Python: `vidsight.pipeline` runs it with the encoder in a Ray actor; tests and the CLI
run it in one process. The RLT pixel test runs BEFORE the encoder so that a frame whose every
patch is static is not encoded again (its embedding and tokens carry over).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

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
        encoder: FrameEncoder,
        settings: CompressorSettings,
        *,
        is_skipping_static: bool = True,
        filter_device: str | None = None,
    ) -> None:
        """is_skipping_static=False still reports static patches but encodes every frame (the
        baseline that static skipping is measured against). filter_device runs the pixel test
        on a GPU next to the encoder."""
        self.stream_id = stream_id
        self.encoder = encoder
        self.settings = settings
        self.is_skipping_static = is_skipping_static
        self.compressor = Compressor(settings)
        self._filter = StaticPatchFilter(settings.patch_size, settings.static_tau, device=filter_device)
        self._rgb_by_index: dict[int, np.ndarray] = {}  # frames waiting for their EncodedFrame
        self.report = StreamReport(stream_id)

    def process(self, frames: Sequence[Frame]) -> list[Event]:
        """Encode and compress a batch of this stream's frames; return the events they closed."""
        if not frames:
            return []
        if any(f.stream_id != self.stream_id for f in frames):
            raise ValueError(f"StreamProcessor({self.stream_id!r}) got frames of another stream")
        started = time.perf_counter()
        skip, masks = [], []
        for frame in frames:
            decision = self._filter.process(frame.rgb)
            skip.append(decision.is_frame_static and self.is_skipping_static)
            masks.append(_numpy(decision.mask))
            self._rgb_by_index[frame.index] = frame.rgb
        self.report.filter_s += time.perf_counter() - started
        self.report.frames += len(frames)
        self.report.encoder_frames_skipped += sum(skip)
        encoded = self._timed_encode(lambda: self.encoder.encode(frames, skip=skip, static_masks=masks))
        return self._compress(encoded)

    def flush(self) -> list[Event]:
        """End of the stream (or of a file): encode the lone waiting frame, close the open event."""
        events = self._compress(self._timed_encode(lambda: self.encoder.flush(self.stream_id)))
        started = time.perf_counter()
        events += self._count(self.compressor.flush())
        self.report.compress_s += time.perf_counter() - started
        self._rgb_by_index.clear()
        return events

    def _timed_encode(self, call: object) -> list[EncodedFrame]:
        started = time.perf_counter()
        encoded: list[EncodedFrame] = call()  # type: ignore[operator]
        self.report.encode_s += time.perf_counter() - started
        return encoded

    def _compress(self, encoded: list[EncodedFrame]) -> list[Event]:
        started = time.perf_counter()
        events: list[Event] = []
        for item in encoded:
            events += self.compressor.process(item, self._rgb_by_index.pop(item.index, None))
        self.report.compress_s += time.perf_counter() - started
        return self._count(events)

    def _count(self, events: list[Event]) -> list[Event]:
        for event in events:
            self.report.events += 1
            self.report.tokens_in += event.stats.tokens_in
            self.report.tokens_kept += event.stats.tokens_kept
        return events


def _numpy(mask: object) -> np.ndarray:
    """The pixel test may run on a GPU; records carry numpy."""
    if isinstance(mask, np.ndarray):
        return mask
    return mask.cpu().numpy()  # type: ignore[attr-defined, no-any-return]
