"""Ray wiring: the stages are plain classes; this module wraps them as actors and tasks.

Kept small on purpose: a stage must be testable without Ray, and Ray must not leak into stages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import ray

from compressor import CompressorSettings, Event
from encoder import EncodedFrame, EncoderSettings
from encoder.records import to_host
from ingest import Frame, LiveReader, OutputSize, decode_file
from ingest.config import IngestSettings
from ingest.uris import parse_source
from vidsight.event_stage import BatcherEncoder, EventStage, StageOutput
from vidsight.processing import StreamProcessor, StreamReport

log = logging.getLogger(__name__)


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join `address` (VIDSIGHT_RAY_ADDRESS) or start a local Ray; idempotent."""
    if ray.is_initialized():
        return
    ray.init(
        address=address,
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )


# A threaded actor: health() answers while get_batch() waits for frames.
@ray.remote(max_concurrency=4)  # type: ignore[call-overload]
class LiveReaderActor:
    """One live stream per actor. A crash here never touches other streams."""

    def __init__(
        self,
        uri: str,
        stream_id: str,
        fps: float | None,
        settings: IngestSettings,
        max_side_px: int | None = None,
    ) -> None:
        spec = parse_source(uri, allowed_schemes=settings.allowed_schemes)
        self.reader = LiveReader(
            spec, stream_id=stream_id, fps=fps, size=OutputSize(max_side_px=max_side_px), settings=settings
        ).start()

    def get_batch(self, max_frames: int, timeout_s: float) -> list[Frame]:
        return self.reader.get_batch(max_frames, timeout_s)

    def health(self) -> dict[str, Any]:
        return self.reader.health().to_dict()

    def is_finished(self) -> bool:
        return self.reader.is_finished

    def close(self) -> None:
        self.reader.close()


@ray.remote(max_concurrency=32)  # type: ignore[call-overload]
class EncoderActor:
    """The encoders on one device; concurrent calls from many streams are batched together.

    Streams opened with `open_stream` are also pixel-tested and compressed here
    (`submit_events`, an `EventStage` on the encoder's device): frames go to the GPU once, tokens
    stay there and only closed events go back. `encode`/`flush` return host records.
    """

    def __init__(self, settings: EncoderSettings, warmup_frame_hw: tuple[int, int] | None = None) -> None:
        from encoder import BatchingEncoder, Encoder

        encoder = Encoder(settings, tokens_on_device=True)
        self.batcher = BatchingEncoder.from_encoder(encoder)
        self.stage = EventStage(BatcherEncoder(self.batcher), device=encoder.tower.device)
        frame_hw = warmup_frame_hw or settings.fixed_hw_px
        if encoder.tower.device.type == "cuda":
            # Compile + CUDA graph for full batches of this frame size; other shapes run eager.
            encoder.warmup(frame_hw)
            if frame_hw is not None:
                grid_hw = encoder.tower.layout.merged_hw(*frame_hw)
                self.stage.warmup(frame_hw, grid_hw, encoder.tower.out_dim)

    def encode(
        self, frames: list[Frame], skip: list[bool], static_masks: list[np.ndarray | None]
    ) -> list[EncodedFrame]:
        return to_host(self.batcher.submit(frames, skip, static_masks).result())

    def flush(self, stream_id: str | None) -> list[EncodedFrame]:
        return to_host(self.batcher.flush(stream_id).result())

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.batcher.encoder.retrieval.embed_texts(texts)

    def retrieval_logit(self) -> tuple[float, float]:
        """SigLIP's (logit_scale, logit_bias): sigmoid(scale * cosine + bias) is a match probability."""
        retrieval = self.batcher.encoder.retrieval
        return float(retrieval.logit_scale), float(retrieval.logit_bias)

    def open_stream(self, stream_id: str, settings: CompressorSettings, is_skipping_static: bool) -> None:
        self.stage.open_stream(stream_id, settings, is_skipping_static=is_skipping_static)

    def submit_events(self, stream_id: str, seq: int, frames: list[Frame]) -> StageOutput:
        return self.stage.submit_events(stream_id, frames, seq=seq).result()

    def flush_events(self, stream_id: str, seq: int) -> StageOutput:
        return self.stage.flush_events(stream_id, seq=seq).result()


class ActorEncoder:
    """`FrameEncoder` and `EventEncoder` over an EncoderActor, for StreamProcessor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self._seq: dict[str, int] = {}

    def encode(
        self,
        frames: Sequence[Frame],
        skip: Sequence[bool] | None = None,
        static_masks: Sequence[np.ndarray | None] | None = None,
        pixels: Sequence[Any] | None = None,
    ) -> list[EncodedFrame]:
        """pixels are ignored: the actor is another process, the frames travel through Ray."""
        n = len(frames)
        skip = [False] * n if skip is None else list(skip)
        masks = [None] * n if static_masks is None else list(static_masks)
        return list(ray.get(self.actor.encode.remote(list(frames), skip, masks)))

    def flush(self, stream_id: str | None = None) -> list[EncodedFrame]:
        return list(ray.get(self.actor.flush.remote(stream_id)))

    def open_stream(
        self, stream_id: str, settings: CompressorSettings, *, is_skipping_static: bool = True
    ) -> None:
        ray.get(self.actor.open_stream.remote(stream_id, settings, is_skipping_static))
        self._seq[stream_id] = 0

    def submit_events(self, stream_id: str, frames: Sequence[Frame]) -> Future[StageOutput]:
        ref = self.actor.submit_events.remote(stream_id, self._next_seq(stream_id), list(frames))
        return ref.future()  # type: ignore[no-any-return]

    def flush_events(self, stream_id: str) -> Future[StageOutput]:
        ref = self.actor.flush_events.remote(stream_id, self._next_seq(stream_id))
        return ref.future()  # type: ignore[no-any-return]

    def _next_seq(self, stream_id: str) -> int:
        seq = self._seq.get(stream_id, 0)
        self._seq[stream_id] = seq + 1
        return seq


def process_file(
    path: str | Path,
    processor: StreamProcessor,
    settings: IngestSettings,
    *,
    batch_frames: int = 8,
    executor: str = "auto",
    on_event: Callable[[Event], None] | None = None,
    fps: float | str | None = "settings",
    on_frame: Callable[[Frame], None] | None = None,
) -> StreamReport:
    """Decode a file in parallel and push its frames through `processor`.

    Decoding runs in worker tasks/threads with bounded buffers while this thread filters,
    encodes and compresses, so decode and encode overlap. Events go to `on_event` as they close.
    fps: "settings" samples at settings.sample_fps; None keeps every frame. on_frame sees every
    sampled frame first (the text channels read slides from them).
    """
    frames = decode_file(
        path,
        fps=settings.sample_fps if fps == "settings" else fps,  # type: ignore[arg-type]
        workers=settings.decode_workers,
        size=OutputSize(max_side_px=settings.max_side_px),
        stream_id=processor.stream_id,
        executor=executor,
        intervals_per_worker=settings.intervals_per_worker,
    )
    emit = on_event or (lambda event: None)
    batch: list[Frame] = []
    for frame in frames:
        if on_frame is not None:
            on_frame(frame)
        batch.append(frame)
        if len(batch) >= batch_frames:
            for event in processor.process(batch):
                emit(event)
            batch = []
    for event in processor.process(batch) + processor.flush():
        emit(event)
    return processor.report
