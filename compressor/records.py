"""The Event record: what the memory bank stores and the LLM later reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class EventStats:
    frames: int  # sampled frames in the event
    grids: int  # temporal grids (Qwen2.5-VL: pairs of frames)
    tokens_in: int  # merged vision tokens the encoder produced for the event
    tokens_kept: int  # tokens retained after static-patch drop, EVS and merging
    encoder_frames_skipped: int = 0  # frames whose every patch was static (encoder not run)
    static_patches: int = 0  # patches the RLT test marked static
    patches: int = 0  # patches tested


@dataclass(frozen=True, slots=True, repr=False)
class Event:
    """A stretch of one stream between two cuts, compressed.

    Positions follow the original-position policy: every kept token keeps the (t, h, w) it had
    in the full stream, t counting temporal grids from the stream's first grid, h and w in
    merged-token units. `grid_pts_s[i]` is the pts of the first frame of grid `grid_t0 + i`.
    """

    event_id: str
    stream_id: str
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    embedding: np.ndarray  # [D] float32, unit norm: the pooled retrieval embedding
    tokens: np.ndarray  # [N, D_llm] float16
    positions: np.ndarray  # [N, 3] int32 (t, h, w)
    counts: np.ndarray  # [N] int32: source tokens each kept token stands for
    grid_t0: int  # first temporal grid of the event
    grid_pts_s: np.ndarray  # [T] float64
    grid_hw: tuple[int, int]
    stats: EventStats
    thumbnails: list[bytes] = field(default_factory=list)  # JPEG keyframes
    text: str = ""  # OCR / speech text attached by the text channels

    def __post_init__(self) -> None:
        n = self.tokens.shape[0]
        if self.embedding.ndim != 1:
            raise ValueError(f"embedding must be [D], got {self.embedding.shape}")
        if self.tokens.ndim != 2:
            raise ValueError(f"tokens must be [N, D], got {self.tokens.shape}")
        if self.positions.shape != (n, 3):
            raise ValueError(f"positions must be [{n}, 3], got {self.positions.shape}")
        if self.counts.shape != (n,):
            raise ValueError(f"counts must be [{n}], got {self.counts.shape}")
        if self.end_pts_s < self.start_pts_s:
            raise ValueError(f"event ends before it starts: {self.start_pts_s} > {self.end_pts_s}")

    @property
    def duration_s(self) -> float:
        return self.end_pts_s - self.start_pts_s

    def __repr__(self) -> str:
        return (
            f"Event({self.event_id!r}, stream={self.stream_id!r}, "
            f"pts=[{self.start_pts_s:.2f}, {self.end_pts_s:.2f}] s, embedding=[{self.embedding.shape[0]}], "
            f"tokens=[{self.tokens.shape[0]}, {self.tokens.shape[1]}], grids={len(self.grid_pts_s)}, "
            f"kept={self.stats.tokens_kept}/{self.stats.tokens_in})"
        )
