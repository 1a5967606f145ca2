"""Settings for the ingest stage (a section of `vidsight.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_fps: float = Field(1.0, gt=0, le=120, description="Frames kept per second of video.")
    max_side_px: int | None = Field(
        None, ge=16, le=8192, description="Resize kept frames so the longer side is at most this."
    )
    decode_workers: int = Field(0, ge=0, le=256, description="Parallel file decoders; 0 means one per core.")
    intervals_per_worker: int = Field(3, ge=1, le=16, description="Keyframe intervals cut per worker.")
    connect_timeout_s: float = Field(10.0, gt=0, le=300, description="Open timeout for network sources.")
    read_timeout_s: float = Field(5.0, gt=0, le=300, description="A live read that waits longer is a stall.")
    first_frame_timeout_s: float = Field(
        10.0, gt=0, le=300, description="A live connection that decodes no frame this long is a stall."
    )
    backoff_base_s: float = Field(0.5, gt=0, le=60, description="First reconnect delay.")
    backoff_cap_s: float = Field(30.0, gt=0, le=3600, description="Longest reconnect delay.")
    max_reconnects: int | None = Field(
        None,
        ge=0,
        description="Give up (state failed) after this many consecutive failures; None retries forever.",
    )
    max_queue_frames: int = Field(
        32, ge=1, le=10_000, description="Live queue bound; the oldest frame is dropped."
    )
    allowed_schemes: list[str] = Field(
        default_factory=lambda: ["file", "http", "https", "rtsp", "rtsps", "v4l2"],
        description="URI schemes that open_source accepts.",
    )
