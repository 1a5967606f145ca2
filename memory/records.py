"""Search results."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a time range of one stream, how well it matched and through which channel."""

    event_id: str
    stream_id: str
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    score: float
    channel: str = "visual"  # visual | ocr | speech | fused
    snippet: str = ""
    thumbnail_path: str | None = None
