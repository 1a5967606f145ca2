"""Frames to Qwen2.5-VL visual tokens through the model's own vision tower, for `vidsight eval`
and the exactness tests. Pixel values follow the transformers video processor's layout
(resize to multiples of patch*merge, CLIP normalisation, [grid_t*grid_h*grid_w, C*tp*p*p]).
The service's ingest path encodes with encoder/ instead.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from compressor.records import Event, EventStats

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def fit_size(height: int, width: int, factor: int, max_pixels: int) -> tuple[int, int]:
    """Qwen's smart_resize: multiples of `factor`, area within max_pixels, aspect kept."""
    h, w = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    return h, w


def resize_frames(frames: np.ndarray, factor: int, max_pixels: int) -> np.ndarray:
    """frames: [T, H, W, 3] uint8 -> [T, H', W', 3] uint8 (bicubic), H', W' multiples of factor."""
    from PIL import Image

    h, w = fit_size(frames.shape[1], frames.shape[2], factor, max_pixels)
    if (h, w) == frames.shape[1:3]:
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BICUBIC)) for f in frames])


def video_patches(
    frames: np.ndarray, patch: int, merge: int, temporal: int
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """frames: [T, H, W, 3] uint8 with H, W multiples of patch*merge -> pixel values
    [grid_t*grid_h*grid_w, 3*temporal*patch*patch] float32 and grid (t, h, w) in patches."""
    if frames.shape[1] % (patch * merge) or frames.shape[2] % (patch * merge):
        raise ValueError(f"frame size {frames.shape[1:3]} must be a multiple of {patch * merge}")
    x = (frames.astype(np.float32) / 255.0 - CLIP_MEAN) / CLIP_STD  # [T, H, W, C]
    x = x.transpose(0, 3, 1, 2)
    if pad := -x.shape[0] % temporal:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
    t, c, h, w = x.shape
    gt, gh, gw = t // temporal, h // patch, w // patch
    x = x.reshape(gt, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * temporal * patch * patch)), (gt, gh, gw)


@torch.inference_mode()
def encode_event(
    model: Any, frames: np.ndarray, pts_s: np.ndarray, *, stream_id: str, event_id: str, grid_t0: int = 0
) -> Event:
    """Run the model's vision tower on frames ([T, H, W, 3] uint8, already sized) and wrap the merged
    tokens as one Event with original (t, h, w) positions. The embedding is the normalised mean token
    (a stand-in: retrieval embeddings come from encoder/)."""
    vc = model.config.vision_config
    pixels, (gt, gh, gw) = video_patches(frames, vc.patch_size, vc.spatial_merge_size, vc.temporal_patch_size)
    visual = model.model.visual
    pix = torch.from_numpy(pixels).to(visual.device, visual.dtype)
    out = visual(pix, grid_thw=torch.tensor([[gt, gh, gw]], device=visual.device))
    tokens = (out.pooler_output if hasattr(out, "pooler_output") else out).float().cpu().numpy()
    m = vc.spatial_merge_size
    h, w = gh // m, gw // m
    t_idx, h_idx, w_idx = np.meshgrid(np.arange(gt) + grid_t0, np.arange(h), np.arange(w), indexing="ij")
    positions = np.stack([t_idx, h_idx, w_idx], axis=-1).reshape(-1, 3).astype(np.int32)
    mean = tokens.mean(axis=0)
    n = tokens.shape[0]
    grid_pts = np.asarray(pts_s, dtype=np.float64)[:: vc.temporal_patch_size][:gt]
    return Event(
        event_id=event_id,
        stream_id=stream_id,
        start_pts_s=float(pts_s[0]),
        end_pts_s=float(pts_s[-1]),
        start_wall_s=None,
        end_wall_s=None,
        embedding=(mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32),
        tokens=tokens,
        positions=positions,
        counts=np.ones(n, dtype=np.int32),
        grid_t0=grid_t0,
        grid_pts_s=grid_pts,
        grid_hw=(h, w),
        stats=EventStats(frames=len(frames), grids=gt, tokens_in=n, tokens_kept=n),
    )
