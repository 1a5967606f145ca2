"""Records that leave the ingest stage: frames, outages and stream health."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass(frozen=True, slots=True, repr=False)
class Frame:
    """One sampled video frame.

    `pts` and `time_base` are the container's own values; `pts_s` is derived from them,
    never from an index and a nominal frame rate (variable-frame-rate files exist).
    `index` counts the frames a source has yielded (0, 1, 2, ...), not decoded frames.
    """

    stream_id: str
    index: int
    pts: int
    time_base: Fraction
    rgb: np.ndarray  # [H, W, 3] uint8
    wall_time_s: float | None = None  # unix time the frame arrived, for live sources

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ValueError(f"Frame.rgb must be [H, W, 3] uint8, got {self.rgb.shape} {self.rgb.dtype}")
        if self.index < 0:
            raise ValueError(f"Frame.index must be >= 0, got {self.index}")

    @property
    def pts_s(self) -> float:
        return float(self.pts * self.time_base)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    def __repr__(self) -> str:
        wall = f", wall_time_s={self.wall_time_s:.3f}" if self.wall_time_s is not None else ""
        return (
            f"Frame(stream_id={self.stream_id!r}, index={self.index}, pts_s={self.pts_s:.3f}, "
            f"rgb=[{self.height}, {self.width}, 3]{wall})"
        )


@dataclass(frozen=True, slots=True)
class Gap:
    """An outage of a live stream: no frames between these wall-clock times."""

    stream_id: str
    start_wall_s: float
    end_wall_s: float | None  # None while the outage lasts
    reason: str

    @property
    def duration_s(self) -> float | None:
        return None if self.end_wall_s is None else self.end_wall_s - self.start_wall_s


class StreamState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    FAILED = "failed"  # gave up, or the source can never work (bad scheme, not a video)
    ENDED = "ended"  # a finite source reached its end, or the reader was closed


@dataclass(slots=True)
class StreamHealth:
    """A snapshot of one stream's reader. Copied out to callers; never shared live."""

    stream_id: str
    uri: str
    state: StreamState = StreamState.CONNECTING
    frames: int = 0  # frames handed to the queue
    decoded_frames: int = 0  # frames the decoder produced, kept or not
    dropped: int = 0  # frames the bounded queue dropped (oldest first)
    reconnects: int = 0
    consecutive_failures: int = 0
    last_frame_wall_s: float | None = None
    lag_s: float = 0.0  # how far the newest frame arrived behind real time
    max_lag_s: float = 0.0
    last_error: str | None = None
    gaps: list[Gap] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "stream_id": self.stream_id,
            "uri": self.uri,
            "state": self.state.value,
            "frames": self.frames,
            "decoded_frames": self.decoded_frames,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "last_frame_wall_s": self.last_frame_wall_s,
            "lag_s": round(self.lag_s, 4),
            "max_lag_s": round(self.max_lag_s, 4),
            "last_error": self.last_error,
            "gaps": [
                {"start_wall_s": g.start_wall_s, "end_wall_s": g.end_wall_s, "reason": g.reason}
                for g in self.gaps
            ],
        }
