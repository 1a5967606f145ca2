"""Frames -> the Qwen2-VL / Qwen2.5-VL video processor's `pixel_values` layout, in torch.

transformers' own processors import torchvision; this module reproduces their video path with plain
torch so it runs where torchvision does not, and on the GPU:

1. smart resize: both sides to multiples of patch * merge (28 px) within [min_pixels, max_pixels],
   keeping the aspect ratio (or a fixed (h, w) when asked);
2. bicubic, antialiased resize of the uint8 frames. torchvision resizes uint8 natively on the CPU
   and through float32 + clamp + round on CUDA; the two differ by a few grey levels, so each device
   follows its own torchvision path;
3. CLIP mean/std normalisation fused with the 1/255 rescale, as transformers does;
4. frames grouped in temporal pairs (an odd last frame is repeated) and cut into patches, ordered
   grid t, merge-block row, merge-block column, row in block, column in block; each patch vector is
   laid out [C, T, p, p].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import FrameShapeError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_MAX_ASPECT = 200


@dataclass(frozen=True, slots=True)
class PatchLayout:
    """How the tower cuts frames: sizes from its config, resize bounds from the settings."""

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 448 * 448
    fixed_hw_px: tuple[int, int] | None = None

    @property
    def factor_px(self) -> int:
        return self.patch_size * self.merge_size

    @property
    def patch_dim(self) -> int:
        return 3 * self.temporal_patch_size * self.patch_size * self.patch_size

    def resized_hw(self, height: int, width: int) -> tuple[int, int]:
        """Pixel size the tower sees for a frame of (height, width)."""
        if self.fixed_hw_px is not None:
            return self.fixed_hw_px
        return smart_resize(height, width, self.factor_px, self.min_pixels, self.max_pixels)

    def merged_hw(self, height: int, width: int) -> tuple[int, int]:
        """Merged-token grid (h, w) for a frame of (height, width): what the LLM reads."""
        rh, rw = self.resized_hw(height, width)
        return rh // self.factor_px, rw // self.factor_px


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's resize rule: sides divisible by `factor`, area within bounds, aspect kept."""
    if min(height, width) <= 0:
        raise FrameShapeError(f"frame sides must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > _MAX_ASPECT:
        raise FrameShapeError(f"aspect ratio must be at most {_MAX_ASPECT}, got {height}x{width}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


FrameArray = np.ndarray | torch.Tensor  # [H, W, 3] uint8: a decoded frame, or one already on a device


def check_frames(frames: Sequence[FrameArray]) -> None:
    """Every frame [H, W, 3] uint8, all of one size."""
    if not frames:
        raise FrameShapeError("need at least one frame")
    first = tuple(frames[0].shape)
    for i, frame in enumerate(frames):
        is_uint8 = frame.dtype == (torch.uint8 if isinstance(frame, torch.Tensor) else np.uint8)
        if frame.ndim != 3 or frame.shape[2] != 3 or not is_uint8:
            raise FrameShapeError(
                f"frame {i} must be [H, W, 3] uint8, got {tuple(frame.shape)} {frame.dtype}"
            )
        if tuple(frame.shape) != first:
            raise FrameShapeError(
                f"frames of one clip must share a size: frame {i} is {tuple(frame.shape)}, not {first}"
            )


def upload_frames(frames: Sequence[FrameArray], device: torch.device) -> torch.Tensor:
    """Frames of one size -> [T, H, W, 3] uint8 on `device`. Host frames are copied once, into
    pinned memory, and go over asynchronously on CUDA; frames already there are only stacked."""
    check_frames(frames)
    if all(isinstance(f, torch.Tensor) for f in frames):
        return torch.stack([f.to(device) for f in frames])  # type: ignore[union-attr]
    host = [f.cpu().numpy() if isinstance(f, torch.Tensor) else f for f in frames]
    if device.type != "cuda":
        return torch.from_numpy(np.stack(host))
    pinned = torch.empty((len(host), *host[0].shape), dtype=torch.uint8, pin_memory=True)
    np.stack(host, out=pinned.numpy())
    return pinned.to(device, non_blocking=True)


def frames_to_tensor(frames: Sequence[FrameArray], device: torch.device) -> torch.Tensor:
    """[T, H, W, 3] uint8 frames -> [T, 3, H, W] uint8 on `device` (pinned, async on CUDA)."""
    return upload_frames(frames, device).permute(0, 3, 1, 2)


def resize_uint8(video: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """[T, 3, H, W] uint8 -> [T, 3, h, w] uint8, bicubic + antialias, as torchvision does it."""
    if tuple(video.shape[-2:]) == tuple(hw):
        return video
    if video.device.type == "cpu":
        return F.interpolate(
            video.contiguous(), size=list(hw), mode="bicubic", antialias=True, align_corners=False
        )
    out = F.interpolate(video.float(), size=list(hw), mode="bicubic", antialias=True, align_corners=False)
    return out.clamp_(0, 255).round_().to(torch.uint8)


def normalize(video: torch.Tensor) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> float32, CLIP mean/std with the 1/255 rescale folded in."""
    mean = torch.tensor(CLIP_MEAN, device=video.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(CLIP_STD, device=video.device).view(1, 3, 1, 1) * 255.0
    return (video.float() - mean) / std


def patchify(video: torch.Tensor, layout: PatchLayout) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """[T, C, H, W] float -> (patches [grid_t * gh * gw, C * tp * p * p], (grid_t, gh, gw))."""
    if pad := -video.shape[0] % layout.temporal_patch_size:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
    frames, channels, height, width = video.shape
    p, m, tp = layout.patch_size, layout.merge_size, layout.temporal_patch_size
    grid_t, grid_h, grid_w = frames // tp, height // p, width // p
    patches = video.view(grid_t, tp, channels, grid_h // m, m, p, grid_w // m, m, p)
    # -> t, block row, block col, row in block, col in block, C, tp, p, p
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(grid_t * grid_h * grid_w, channels * tp * p * p), (grid_t, grid_h, grid_w)


def preprocess(
    frames: Sequence[FrameArray], layout: PatchLayout, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """One clip of frames -> (pixel_values [n_patches, C*T*p*p] float32, grid_thw [1, 3] int64).

    Equals transformers' Qwen2VLVideoProcessor output for the clip (`pixel_values_videos`,
    `video_grid_thw`) when run on the CPU.
    """
    device = torch.device(device)
    video = frames_to_tensor(frames, device)
    video = resize_uint8(video, layout.resized_hw(video.shape[2], video.shape[3]))
    pixel_values, thw = patchify(normalize(video), layout)
    return pixel_values, torch.tensor([thw], dtype=torch.int64)


def preprocess_pairs(
    pairs: Sequence[Sequence[FrameArray]], layout: PatchLayout, device: torch.device
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Many temporal grids of one size at once: each pair is 1 or 2 frames of one size.

    Returns (pixel_values [G * gh * gw, patch_dim] float32 on `device`, (gh, gw)); grid g's patches
    are rows [g * gh * gw, (g + 1) * gh * gw). A lone frame is repeated, as for an odd clip.
    """
    tp = layout.temporal_patch_size
    flat = [pair[min(i, len(pair) - 1)] for pair in pairs for i in range(tp)]
    video = frames_to_tensor(flat, device)
    video = resize_uint8(video, layout.resized_hw(video.shape[2], video.shape[3]))
    pixel_values, (_, grid_h, grid_w) = patchify(normalize(video), layout)
    return pixel_values, (grid_h, grid_w)
