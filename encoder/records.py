"""Records that leave the encoder stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, repr=False)
class EncodedFrame:
    """One sampled frame after the encoders.

    `embedding` is the retrieval encoder's L2-normalised image embedding. `tokens` are the VLM
    vision tower's merged tokens for the temporal grid this frame belongs to (Qwen2.5-VL packs
    two frames per grid: both frames of a pair carry the same `grid_index`, and only the first
    carries the tokens). `static_mask` is the RLT pixel test against the last kept patches
    ([H//p, W//p], True = static) when the compressor ran before the encoder.
    """

    stream_id: str
    index: int  # Frame.index
    pts_s: float
    wall_time_s: float | None
    embedding: np.ndarray  # [D] float32, unit norm
    grid_index: int  # temporal grid t within the stream
    tokens: np.ndarray | None  # [h * w, D_llm] float16, row-major over (h, w); None on the pair's 2nd frame
    grid_hw: tuple[int, int]  # merged-token grid (h, w)
    is_encoder_skipped: bool = False  # every patch static: embedding and tokens carried over
    static_mask: np.ndarray | None = None  # [H//p, W//p] bool

    def __post_init__(self) -> None:
        if self.embedding.ndim != 1:
            raise ValueError(f"embedding must be [D], got {self.embedding.shape}")
        if self.tokens is not None and (
            self.tokens.ndim != 2 or self.tokens.shape[0] != self.grid_hw[0] * self.grid_hw[1]
        ):
            raise ValueError(f"tokens must be [h*w, D] with (h, w)={self.grid_hw}, got {self.tokens.shape}")

    def __repr__(self) -> str:
        tokens = "None" if self.tokens is None else f"[{self.tokens.shape[0]}, {self.tokens.shape[1]}]"
        return (
            f"EncodedFrame(stream_id={self.stream_id!r}, index={self.index}, pts_s={self.pts_s:.3f}, "
            f"grid={self.grid_index}, embedding=[{self.embedding.shape[0]}], tokens={tokens}, "
            f"skipped={self.is_encoder_skipped})"
        )
