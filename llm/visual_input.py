"""Frames to an Event of Qwen2.5-VL visual tokens through the model's own vision tower
(encoder.VisionTower wrapping `model.model.visual`), for `vidsight eval` and tests. The service's
ingest path goes through encoder/ and compressor/ instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compressor.records import Event, EventStats


def event_from_tokens(
    tokens: np.ndarray,
    grids: int,
    grid_hw: tuple[int, int],
    pts_s: Sequence[float],
    *,
    temporal_patch_size: int,
    stream_id: str,
    event_id: str,
    grid_t0: int = 0,
) -> Event:
    """Wrap every merged token of `grids` temporal grids ([grids*h*w, D], (t, h, w) row-major) as one
    Event with original positions. `pts_s` are the frames' times (temporal_patch_size frames a grid).
    The embedding is the normalised mean token, a stand-in: retrieval embeddings come from encoder/."""
    h, w = grid_hw
    if tokens.shape[0] != grids * h * w:
        raise ValueError(f"tokens must be [{grids}*{h}*{w}, D], got {tokens.shape}")
    t_idx, h_idx, w_idx = np.meshgrid(np.arange(grids) + grid_t0, np.arange(h), np.arange(w), indexing="ij")
    positions = np.stack([t_idx, h_idx, w_idx], axis=-1).reshape(-1, 3).astype(np.int32)
    mean = tokens.astype(np.float32).mean(axis=0)
    pts = np.asarray(pts_s, dtype=np.float64)
    n = tokens.shape[0]
    return Event(
        event_id=event_id,
        stream_id=stream_id,
        start_pts_s=float(pts[0]),
        end_pts_s=float(pts[-1]),
        start_wall_s=None,
        end_wall_s=None,
        embedding=(mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32),
        tokens=tokens,
        positions=positions,
        counts=np.ones(n, dtype=np.int32),
        grid_t0=grid_t0,
        grid_pts_s=pts[::temporal_patch_size][:grids],
        grid_hw=grid_hw,
        stats=EventStats(frames=len(pts), grids=grids, tokens_in=n, tokens_kept=n),
    )


def encode_event(
    tower: Any, frames: Sequence[np.ndarray], pts_s: Sequence[float], *, stream_id: str, event_id: str
) -> Event:
    """frames ([H, W, 3] uint8) through `tower` (encoder.VisionTower) -> one Event of float16 tokens."""
    grids = tower.encode(list(frames))
    tokens = np.concatenate([g.tokens.float().cpu().numpy() for g in grids]).astype(np.float16)
    tp = tower.layout.temporal_patch_size
    return event_from_tokens(
        tokens,
        len(grids),
        grids[0].grid_hw,
        pts_s,
        temporal_patch_size=tp,
        stream_id=stream_id,
        event_id=event_id,
    )
