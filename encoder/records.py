"""Records that leave the encoder stage."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


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
    # [h * w, D_llm] float16, row-major over (h, w); None on the pair's 2nd frame. numpy, or a
    # tensor on the tower's device from an Encoder(tokens_on_device=True).
    tokens: np.ndarray | torch.Tensor | None
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
        if self.tokens is not None and not isinstance(self.tokens, np.ndarray):
            tokens += f" on {self.tokens.device}"
        return (
            f"EncodedFrame(stream_id={self.stream_id!r}, index={self.index}, pts_s={self.pts_s:.3f}, "
            f"grid={self.grid_index}, embedding=[{self.embedding.shape[0]}], tokens={tokens}, "
            f"skipped={self.is_encoder_skipped})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class GridTokens:
    """The vision tower's merged tokens for one temporal grid (two frames for Qwen2.5-VL).

    `tokens` stay where the tower ran (device, dtype) so the LLM path can use them directly.
    """

    tokens: torch.Tensor  # [h * w, D_llm], row-major over the merged grid (h, w)
    grid_hw: tuple[int, int]  # merged-token grid (h, w)

    def __post_init__(self) -> None:
        h, w = self.grid_hw
        if self.tokens.ndim != 2 or self.tokens.shape[0] != h * w:
            raise ValueError(
                f"tokens must be [h*w, D] with (h, w)={self.grid_hw}, got {tuple(self.tokens.shape)}"
            )

    def __repr__(self) -> str:
        return (
            f"GridTokens(tokens=[{self.tokens.shape[0]}, {self.tokens.shape[1]}] {self.tokens.dtype} "
            f"on {self.tokens.device}, grid_hw={self.grid_hw})"
        )


def to_host(records: list[EncodedFrame]) -> list[EncodedFrame]:
    """Records with device tokens (`Encoder(tokens_on_device=True)`) -> the same records with
    read-only float16 numpy tokens, for another process. Frames that shared a tensor share the
    host array."""
    copies: dict[int, np.ndarray] = {}
    out = []
    for record in records:
        tokens = record.tokens
        if tokens is not None and not isinstance(tokens, np.ndarray):
            if id(tokens) not in copies:
                host = tokens.half().cpu().numpy()
                host.flags.writeable = False  # shared by carried-over frames
                copies[id(tokens)] = host
            record = replace(record, tokens=copies[id(tokens)])
        out.append(record)
    return out
