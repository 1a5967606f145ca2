"""Ray wiring: the stages are plain classes; this module wraps them as actors and tasks.

Kept small on purpose: a stage must be testable without Ray, and Ray must not leak into stages.
"""

from __future__ import annotations

import logging
from typing import Any

import ray

from ingest import Frame, LiveReader, OutputSize
from ingest.config import IngestSettings
from ingest.uris import parse_source

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
