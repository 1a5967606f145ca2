"""Efficient Video Sampling (EVS), with vLLM's semantics (`vllm/multimodal/evs.py`).

Sizes follow vLLM and Qwen2.5-VL's `video_grid_thw`: `thw = (T, H, W)` where T counts temporal
grids (Qwen2.5-VL: pairs of frames) and H, W count PIXEL PATCHES before the spatial merge; the
merged token grid is (h, w) = (H // m, W // m) with m = spatial_merge_size. Embeddings come in
the vision tower's output order, row-major over (t, h, w): `embeds: [T * h * w, D]`.

A token's dissimilarity is 1 - cos(e[t, h, w], e[t - 1, h, w]); every token of grid 0 gets 255 so
grid 0 is always kept whole; the k = max(h * w, int(T * h * w * (1 - q))) most dissimilar tokens
survive, ranked by a stable descending sort (ties go to the earlier token). Survivors keep the
(t, h, w) they had in the full grid. For streams, apply it per window or event: its first grid
plays grid 0, and `t0` shifts positions back to stream coordinates.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import CompressorInputError


def evs_retained_count(tokens_per_grid: int, grids: int, q: float) -> int:
    """How many tokens EVS keeps: never fewer than one whole grid."""
    return max(tokens_per_grid, int(tokens_per_grid * grids * (1 - q)))


def merged_grid(thw: tuple[int, int, int], spatial_merge_size: int) -> tuple[int, int, int]:
    """(T, h, w) of merged tokens for a patch grid (T, H, W)."""
    t, h, w = (int(x) for x in thw)
    m = int(spatial_merge_size)
    if m < 1 or h % m or w % m:
        raise CompressorInputError(
            f"patch grid (H, W)=({h}, {w}) must be divisible by spatial_merge_size={m}"
        )
    if t < 1 or h < 1 or w < 1:
        raise CompressorInputError(f"thw must be positive, got {(t, h, w)}")
    return t, h // m, w // m


def evs_retention_mask(
    embeds: torch.Tensor, thw: tuple[int, int, int] | torch.Tensor, spatial_merge_size: int, q: float
) -> torch.Tensor:
    """[T * h * w] bool, True for tokens EVS keeps. embeds: [T * h * w, D]; q in [0, 1)."""
    if not 0.0 <= q < 1.0:
        raise CompressorInputError(f"q must be in [0, 1), got {q}")
    t, h, w = merged_grid(tuple(int(x) for x in thw), spatial_merge_size)  # type: ignore[arg-type]
    if embeds.ndim != 2 or embeds.shape[0] != t * h * w:
        raise CompressorInputError(f"embeds must be [T*h*w={t * h * w}, D], got {tuple(embeds.shape)}")
    grid = embeds.reshape(t, h, w, embeds.shape[-1])
    dissimilarity = 1 - torch.nn.functional.cosine_similarity(grid[1:], grid[:-1], dim=-1)  # [T-1, h, w]
    first = torch.full((1, h, w), 255.0, dtype=dissimilarity.dtype, device=dissimilarity.device)
    flat = torch.cat([first, dissimilarity], dim=0).reshape(-1)
    order = torch.argsort(flat, descending=True, stable=True)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[order[: evs_retained_count(h * w, t, q)]] = True
    return mask


def grid_positions(thw: tuple[int, int, int], spatial_merge_size: int, t0: int = 0) -> np.ndarray:
    """[T * h * w, 3] int32 (t, h, w) of every merged token, row-major, t shifted by t0."""
    t, h, w = merged_grid(thw, spatial_merge_size)
    tt, hh, ww = np.meshgrid(np.arange(t) + t0, np.arange(h), np.arange(w), indexing="ij")
    return np.stack([tt.ravel(), hh.ravel(), ww.ravel()], axis=1).astype(np.int32)


def survivor_positions(
    mask: torch.Tensor | np.ndarray, thw: tuple[int, int, int], spatial_merge_size: int, t0: int = 0
) -> np.ndarray:
    """[N, 3] int32 (t, h, w) of the tokens a retention mask keeps, in token order."""
    keep = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    positions = grid_positions(thw, spatial_merge_size, t0)
    if keep.shape != (positions.shape[0],):
        raise CompressorInputError(f"mask must be [{positions.shape[0]}], got {keep.shape}")
    return positions[keep.astype(bool)]
