"""One stream's path from frames to events: static-patch test, encoders, compressor.

Plain Python: `vidsight.pipeline` runs it with the encoder in a Ray actor; tests and the CLI
run it in one process. The RLT pixel test runs BEFORE the encoder so that a frame whose every
patch is static is not encoded again (its embedding and tokens carry over).

The pixel test and the compressor run next to the encoder (`vidsight.event_stage.EventStage`):
in this process for a local encoder, in the encoder's actor for a remote one, so that frames go
to the device once, the tokens stay there and only closed events cross a process boundary.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from compressor import CompressorSettings, Event
from ingest import Frame
from vidsight.event_stage import EventEncoder, EventStage, FrameEncoder, StageOutput

__all__ = ["EventEncoder", "EventStage", "FrameEncoder", "StageOutput", "StreamProcessor", "StreamReport"]


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
        baseline that static skipping is measured against). An `EventEncoder` (the encoder's
        actor) tests pixels and compresses where it encodes, on its device; a plain
        `FrameEncoder` gets them here, the pixel test on `filter_device` (a GPU next to the
        encoder; None: numpy). max_in_flight > 1 lets `process` return before its batch is done
        (up to that many batches in the stage): its events come back from a later call or
        `flush`, and the next batch's decode and transfer overlap the work on this one. For
        files; live streams want 1 (events without delay)."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.stream_id = stream_id
        self.encoder = encoder
        self.settings = settings
        self.max_in_flight = max_in_flight
        if isinstance(encoder, EventEncoder):
            self._stage: EventEncoder = encoder
        else:
            self._stage = EventStage(encoder, device=filter_device)
        self._stage.open_stream(stream_id, settings, is_skipping_static=is_skipping_static)
        self._in_flight: deque[Future[StageOutput]] = deque()
        self.report = StreamReport(stream_id)

    def process(self, frames: Sequence[Frame]) -> list[Event]:
        """Test, encode and compress a batch of this stream's frames; return the events that
        closed (with max_in_flight > 1, those of the batches that finished by now)."""
        if not frames:
            return []
        if any(f.stream_id != self.stream_id for f in frames):
            raise ValueError(f"StreamProcessor({self.stream_id!r}) got frames of another stream")
        self.report.frames += len(frames)
        self._in_flight.append(self._stage.submit_events(self.stream_id, frames))
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
        self.report.encoder_frames_skipped += output.frames_skipped
        self.report.filter_s += output.filter_s
        self.report.encode_s += output.encode_s
        self.report.compress_s += output.compress_s
        for event in output.events:
            self.report.events += 1
            self.report.tokens_in += event.stats.tokens_in
            self.report.tokens_kept += event.stats.tokens_kept
        return output.events
