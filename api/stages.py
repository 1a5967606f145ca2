"""The pipeline stages the service drives, behind one small interface whether they run as Ray actors
(`pipeline="ray"`: an EncoderActor, a LiveReaderActor per stream) or in this process's threads
(`pipeline="local"`). Ray stays here; the rest of the service never imports it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from encoder import EncoderSettings
from ingest import Frame
from ingest.config import IngestSettings
from vidsight.event_stage import BatcherEncoder
from vidsight.processing import FrameEncoder

log = logging.getLogger(__name__)


class LiveHandle(Protocol):
    """One live stream's reader."""

    def get_batch(self, max_frames: int, timeout_s: float) -> list[Frame]: ...

    def health(self) -> dict[str, Any]: ...

    def is_finished(self) -> bool: ...

    def close(self) -> None: ...


class Stages(Protocol):
    """What the service needs from the pipeline."""

    kind: str

    def frame_encoder(self) -> FrameEncoder: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def retrieval_logit(self) -> tuple[float, float]: ...

    def open_live(
        self, uri: str, stream_id: str, fps: float | None, settings: IngestSettings, max_side_px: int | None
    ) -> LiveHandle: ...

    def file_executor(self) -> str: ...

    def close(self) -> None: ...


class LocalStages:
    """Encoders behind a BatchingEncoder (one worker thread owns the model), readers as threads."""

    kind = "local"

    def __init__(self, settings: EncoderSettings) -> None:
        from encoder import BatchingEncoder, Encoder

        self.batcher = BatchingEncoder.from_encoder(Encoder(settings))

    def frame_encoder(self) -> FrameEncoder:
        return BatcherEncoder(self.batcher)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.batcher.encoder.retrieval.embed_texts(list(texts))

    def retrieval_logit(self) -> tuple[float, float]:
        retrieval = self.batcher.encoder.retrieval
        return float(retrieval.logit_scale), float(retrieval.logit_bias)

    def open_live(
        self, uri: str, stream_id: str, fps: float | None, settings: IngestSettings, max_side_px: int | None
    ) -> LiveHandle:
        from ingest import LiveReader, OutputSize
        from ingest.uris import parse_source

        spec = parse_source(uri, allowed_schemes=settings.allowed_schemes)
        reader = LiveReader(
            spec, stream_id=stream_id, fps=fps, size=OutputSize(max_side_px=max_side_px), settings=settings
        )
        return _LocalLive(reader.start())

    def file_executor(self) -> str:
        return "threads"

    def close(self) -> None:
        self.batcher.close()


class _LocalLive:
    def __init__(self, reader: Any) -> None:
        self.reader = reader

    def get_batch(self, max_frames: int, timeout_s: float) -> list[Frame]:
        return list(self.reader.get_batch(max_frames, timeout_s))

    def health(self) -> dict[str, Any]:
        return dict(self.reader.health().to_dict())

    def is_finished(self) -> bool:
        return bool(self.reader.is_finished)

    def close(self) -> None:
        self.reader.close()


class RayStages:
    """An EncoderActor shared by every stream and job; one LiveReaderActor per live stream."""

    kind = "ray"

    def __init__(self, settings: EncoderSettings, ray_address: str | None) -> None:
        from vidsight.pipeline import EncoderActor, init_ray

        init_ray(ray_address)
        self.actor = EncoderActor.remote(settings)  # type: ignore[attr-defined]

    def frame_encoder(self) -> FrameEncoder:
        from vidsight.pipeline import ActorEncoder

        return ActorEncoder(self.actor)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import ray

        return np.asarray(ray.get(self.actor.embed_texts.remote(list(texts))))

    def retrieval_logit(self) -> tuple[float, float]:
        import ray

        scale, bias = ray.get(self.actor.retrieval_logit.remote())
        return float(scale), float(bias)

    def open_live(
        self, uri: str, stream_id: str, fps: float | None, settings: IngestSettings, max_side_px: int | None
    ) -> LiveHandle:
        from vidsight.pipeline import LiveReaderActor

        actor = LiveReaderActor.remote(uri, stream_id, fps, settings, max_side_px)  # type: ignore[attr-defined]
        return _RayLive(actor)

    def file_executor(self) -> str:
        return "ray"

    def close(self) -> None:
        import ray

        try:
            ray.kill(self.actor)
        except Exception as exc:  # Ray already shut down: nothing to stop
            log.debug("encoder actor kill: %s", exc)


class _RayLive:
    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def get_batch(self, max_frames: int, timeout_s: float) -> list[Frame]:
        import ray

        return list(ray.get(self.actor.get_batch.remote(max_frames, timeout_s)))

    def health(self) -> dict[str, Any]:
        import ray

        return dict(ray.get(self.actor.health.remote(), timeout=10))

    def is_finished(self) -> bool:
        import ray

        return bool(ray.get(self.actor.is_finished.remote(), timeout=10))

    def close(self) -> None:
        import ray

        try:
            ray.get(self.actor.close.remote(), timeout=10)
        finally:
            ray.kill(self.actor)


class TextEncoder:
    """The retrieval encoder's text side as the alert scorer sees it (wherever the model lives)."""

    def __init__(self, stages: Stages) -> None:
        self._stages = stages
        self.logit_scale, self.logit_bias = stages.retrieval_logit()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._stages.embed_texts(texts)


def make_stages(kind: str, settings: EncoderSettings, ray_address: str | None) -> Stages:
    if kind == "ray":
        return RayStages(settings, ray_address)
    return LocalStages(settings)
