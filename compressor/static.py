"""The RLT pixel test: which patches did not change since the last kept patch at their place.

Run-Length Tokenization (Choudhury et al., NeurIPS 2024) drops a patch when the mean absolute
difference of its ImageNet-normalised pixels from the same patch earlier is small. RLT compares
with the previous sample; we compare with the last KEPT patch at that place, so a slow change
(lighting, a creeping shadow) cannot drift forever under the threshold: it is kept once it has
added up to tau. Reconstruction is copy-forward: a dropped patch shows the last kept patch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
import torch

from encoder.qwen_preprocess import upload_frames

from ._last_kept import last_kept_masks, patch_scores
from .errors import CompressorInputError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float64)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float64)
# |(a/255 - m) / s - (b/255 - m) / s| = |a - b| / (255 s): the mean cancels, so the test runs on
# integer differences scaled per channel, with no float copy of either frame.
_CHANNEL_SCALE = 1.0 / (255.0 * IMAGENET_STD)


def _check_frame(name: str, rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise CompressorInputError(f"{name} must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")


def patch_differences(prev: np.ndarray, cur: np.ndarray, patch_size: int) -> np.ndarray:
    """[H//p, W//p] float32: ImageNet-normalised mean absolute difference per patch, over its channels.

    prev, cur: [H, W, 3] uint8 of the same size. Pixels past the last whole patch are not tested.
    """
    _check_frame("prev", prev)
    _check_frame("cur", cur)
    if prev.shape != cur.shape:
        raise CompressorInputError(f"frames differ in size: {prev.shape} vs {cur.shape}")
    if patch_size < 1:
        raise CompressorInputError(f"patch_size must be >= 1, got {patch_size}")
    p = patch_size
    hp, wp = cur.shape[0] // p, cur.shape[1] // p
    a, b = cur[: hp * p, : wp * p], prev[: hp * p, : wp * p]
    diff = np.maximum(a, b)
    diff -= np.minimum(a, b)  # |a - b| without leaving uint8
    # Sum the p rows of each patch first (a contiguous reduction), then its p columns.
    row_dtype = np.uint16 if p <= 257 else np.uint32
    rows = diff.reshape(hp, p, wp * p * 3).sum(axis=1, dtype=row_dtype)  # [hp, wp * p * 3]
    sums = rows.reshape(hp, wp, p, 3).sum(axis=2, dtype=np.uint32)  # [hp, wp, 3]
    return (sums @ _CHANNEL_SCALE / (p * p * 3)).astype(np.float32)


def patch_differences_torch(prev: torch.Tensor, cur: torch.Tensor, patch_size: int) -> torch.Tensor:
    """`patch_differences` for uint8 [H, W, 3] tensors, on their device (the GPU next to the encoder)."""
    if prev.shape != cur.shape or cur.ndim != 3 or cur.shape[2] != 3 or cur.dtype != torch.uint8:
        raise CompressorInputError(
            f"frames must be [H, W, 3] uint8 of one size, got {cur.shape}, {prev.shape}"
        )
    p = patch_size
    hp, wp = cur.shape[0] // p, cur.shape[1] // p
    diff = (cur[: hp * p, : wp * p].to(torch.int16) - prev[: hp * p, : wp * p].to(torch.int16)).abs_()
    sums = diff.reshape(hp, p, wp, p, 3).sum(dim=(1, 3), dtype=torch.int32)  # [hp, wp, 3]
    scale = torch.tensor(_CHANNEL_SCALE / (p * p * 3), dtype=torch.float64, device=cur.device)
    return patch_scores(sums, scale)


@overload
def static_patch_mask(prev: np.ndarray, cur: np.ndarray, patch_size: int, tau: float = 0.1) -> np.ndarray: ...
@overload
def static_patch_mask(
    prev: torch.Tensor, cur: torch.Tensor, patch_size: int, tau: float = 0.1
) -> torch.Tensor: ...
def static_patch_mask(prev: Any, cur: Any, patch_size: int, tau: float = 0.1) -> Any:
    """[H//p, W//p] bool, True where the patch is static: normalised mean absolute difference <= tau.

    numpy arrays in, numpy out; torch tensors in, a bool tensor on their device out.
    """
    if isinstance(cur, torch.Tensor):
        return patch_differences_torch(prev, cur, patch_size) <= tau
    return patch_differences(prev, cur, patch_size) <= tau


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when identical)."""
    if a.shape != b.shape:
        raise CompressorInputError(f"images differ in shape: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@dataclass(frozen=True, slots=True, repr=False)
class StaticPatches:
    """What the pixel test says about one frame."""

    mask: np.ndarray  # [H//p, W//p] bool, True = static (dropped, copied forward)
    is_frame_static: bool  # every patch static: the encoder can be skipped for this frame
    is_segment_start: bool  # first frame of a segment: kept whole

    @property
    def static_patches(self) -> int:
        return int(self.mask.sum())

    def __repr__(self) -> str:
        return (
            f"StaticPatches(mask=[{self.mask.shape[0]}, {self.mask.shape[1]}], static={self.static_patches}, "
            f"frame_static={self.is_frame_static})"
        )


class StaticPatchFilter:
    """A per-stream plug-in: `process(rgb)` for each sampled frame, in order.

    reference="last_kept" compares each patch with the last kept patch at its place (our rule);
    "previous" compares with the previous sample (RLT's rule, kept for comparison). Either way,
    `reconstruction()` is the copy-forward image: kept patches from their frame, dropped patches
    from the last kept patch at that place. With `device` set, the reference lives there as a
    torch tensor (e.g. on the encoder's GPU) and only the mask comes back to the host.
    """

    def __init__(
        self,
        patch_size: int = 14,
        tau: float = 0.1,
        reference: Literal["last_kept", "previous"] = "last_kept",
        device: str | torch.device | None = None,
    ) -> None:
        if patch_size < 1:
            raise CompressorInputError(f"patch_size must be >= 1, got {patch_size}")
        if tau < 0:
            raise CompressorInputError(f"tau must be >= 0, got {tau}")
        if reference not in ("last_kept", "previous"):
            raise CompressorInputError(f"reference must be 'last_kept' or 'previous', got {reference!r}")
        self.patch_size = patch_size
        self.tau = tau
        self.reference = reference
        self.device = None if device is None else torch.device(device)
        self._kept: Any = None  # [H, W, 3] uint8 copy-forward image: np.ndarray, or a tensor on device
        self._scale: torch.Tensor | None = None  # [3] float64 per-channel scale, on the device
        self._previous: Any = None  # [H, W, 3], only for reference="previous"

    def reset(self) -> None:
        """Forget the reference: the next frame starts a segment."""
        self._kept = None
        self._previous = None

    def process(self, rgb: np.ndarray, *, is_segment_start: bool = False) -> StaticPatches:
        """Test one frame against the reference and update the reference with its kept patches."""
        _check_frame("rgb", rgb)
        frame: Any = rgb if self.device is None else torch.from_numpy(rgb).to(self.device)
        mask = self._test(frame, is_segment_start)
        return self._decision(rgb.shape, None if mask is None else _host(mask))

    def process_many(self, rgbs: Sequence[np.ndarray] | torch.Tensor) -> list[StaticPatches]:
        """`process` for consecutive frames of the stream. On a device, frames of one size go over
        in one copy (or come as a [B, H, W, 3] uint8 tensor already there) and are tested in one
        launch; their masks come back in one copy: one host sync per batch, not per frame."""
        if isinstance(rgbs, torch.Tensor):
            if self.device is None or rgbs.ndim != 4 or rgbs.shape[3] != 3 or rgbs.dtype != torch.uint8:
                raise CompressorInputError(
                    f"a frame batch tensor must be [B, H, W, 3] uint8 on the filter's device, got "
                    f"{tuple(rgbs.shape)} {rgbs.dtype} for a filter on {self.device}"
                )
            batch = rgbs.to(self.device)
            shape = tuple(rgbs.shape[1:])
        else:
            for rgb in rgbs:
                _check_frame("rgb", rgb)
            if self.device is None or len({rgb.shape for rgb in rgbs}) != 1:
                return [self.process(rgb) for rgb in rgbs]
            batch = upload_frames(rgbs, self.device)  # [B, H, W, 3] uint8
            shape = rgbs[0].shape
        if self.reference == "last_kept":
            masks = self._test_batch(batch)
        else:
            masks = [self._test(frame, False) for frame in batch]
        tested = [m for m in masks if m is not None]
        host = iter(torch.stack(tested).cpu().numpy() if tested else [])
        return [self._decision(shape, None if m is None else next(host)) for m in masks]

    def _test_batch(self, batch: torch.Tensor) -> list[torch.Tensor | None]:
        """The last-kept rule over a batch [B, H, W, 3] on the device, in one launch (`_last_kept`:
        a Triton kernel, or a graph shared by every stream with batches of this shape); the uint8
        reference is brought up to date once per batch."""
        p, masks = self.patch_size, list[torch.Tensor | None]()
        if self._kept is None or tuple(self._kept.shape) != tuple(batch.shape[1:]):
            self._kept, self._previous = batch[0].clone(), None
            masks.append(None)  # a segment starts: the first frame is kept whole
        if len(masks) == batch.shape[0]:
            return masks
        if self._scale is None:
            self._scale = torch.tensor(_CHANNEL_SCALE / (p * p * 3), dtype=torch.float64, device=batch.device)
        tested, reference = last_kept_masks(batch[len(masks) :], self._kept, p, self.tau, self._scale)
        masks.extend(tested)
        hp, wp = reference.shape[0] // p, reference.shape[1] // p
        self._kept[: hp * p, : wp * p] = reference.to(torch.uint8)
        # Pixels past the last whole patch are never tested; they always show the latest frame.
        self._kept[hp * p :] = batch[-1, hp * p :]
        self._kept[:, wp * p :] = batch[-1, :, wp * p :]
        return masks

    def _test(self, frame: Any, is_segment_start: bool) -> Any:
        """The mask of frame ([H, W, 3], numpy or a tensor on device), or None: a segment starts."""
        if is_segment_start or self._kept is None or tuple(self._kept.shape) != tuple(frame.shape):
            self._kept = _clone(frame)
            self._previous = _clone(frame) if self.reference == "previous" else None
            return None
        compare_to = self._previous if self.reference == "previous" else self._kept
        mask = static_patch_mask(compare_to, frame, self.patch_size, self.tau)
        if isinstance(mask, torch.Tensor):
            self._copy_dynamic_patches_torch(frame, mask)
        else:
            self._copy_dynamic_patches(frame, mask)
        if self.reference == "previous":
            self._previous = _clone(frame)
        return mask

    def _decision(self, shape: tuple[int, ...], mask: np.ndarray | None) -> StaticPatches:
        if mask is None:
            grid = (shape[0] // self.patch_size, shape[1] // self.patch_size)
            return StaticPatches(np.zeros(grid, dtype=bool), is_frame_static=False, is_segment_start=True)
        return StaticPatches(mask, is_frame_static=bool(mask.all()), is_segment_start=False)

    def reconstruction(self) -> np.ndarray:
        """[H, W, 3] uint8: the latest frame rebuilt from kept patches (copy-forward)."""
        if self._kept is None:
            raise CompressorInputError("no frame processed since the last reset")
        return self._kept.cpu().numpy() if isinstance(self._kept, torch.Tensor) else self._kept.copy()

    def _copy_dynamic_patches(self, rgb: np.ndarray, mask: np.ndarray) -> None:
        assert self._kept is not None
        p = self.patch_size
        hp, wp = mask.shape
        rows, cols = np.nonzero(~mask)
        if rows.size:
            kept, cur = _patch_view(self._kept, p, hp, wp), _patch_view(rgb, p, hp, wp)
            kept[rows, :, cols] = cur[rows, :, cols]
        # Pixels past the last whole patch are never tested; they always show the current frame.
        self._kept[hp * p :] = rgb[hp * p :]
        self._kept[:, wp * p :] = rgb[:, wp * p :]

    def _copy_dynamic_patches_torch(self, frame: torch.Tensor, mask: torch.Tensor) -> None:
        p = self.patch_size
        hp, wp = mask.shape
        kept = self._kept.as_strided((hp, p, wp, p, 3), _patch_strides(self._kept.stride(), p))
        cur = frame.as_strided((hp, p, wp, p, 3), _patch_strides(frame.stride(), p))
        kept.copy_(torch.where(mask[:, None, :, None, None], kept, cur))
        self._kept[hp * p :] = frame[hp * p :]
        self._kept[:, wp * p :] = frame[:, wp * p :]


def _host(mask: Any) -> np.ndarray:
    return mask.cpu().numpy() if isinstance(mask, torch.Tensor) else mask  # type: ignore[no-any-return]


def _clone(frame: Any) -> Any:
    return frame.clone() if isinstance(frame, torch.Tensor) else frame.copy()


def _patch_strides(strides: tuple[int, ...], p: int) -> tuple[int, ...]:
    s0, s1, s2 = strides
    return (p * s0, s0, p * s1, s1, s2)


def _patch_view(rgb: np.ndarray, p: int, hp: int, wp: int) -> np.ndarray:
    """[hp, p, wp, p, 3] view of the whole patches of rgb: writes go to rgb even when W % p != 0,
    where a reshape of the cropped array would silently copy."""
    return np.lib.stride_tricks.as_strided(rgb, (hp, p, wp, p, 3), _patch_strides(rgb.strides, p))


def merged_static_mask(mask: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """[..., h, w] bool: a merged token is static when every pixel patch it covers is static.

    mask: [..., Hp, Wp] patch masks (one frame, or a batch). For Qwen2.5-VL, Hp = 2h and a token
    covers 2x2 patches; other ratios map each token to the patches its area overlaps.
    """
    h, w = grid_hw
    *lead, hp, wp = mask.shape
    if hp % h == 0 and wp % w == 0:
        # AND of the strided views, one per patch offset inside a token: ~15x faster than
        # reshape(...).all(axis=...) over the non-contiguous axes (0.07 vs 0.94 ms at [64, 32, 32]).
        sy, sx = hp // h, wp // w
        out = mask[..., 0::sy, 0::sx].copy()
        for dy in range(sy):
            for dx in range(sx):
                if dy or dx:
                    out &= mask[..., dy::sy, dx::sx]
        return out
    rows = [(i * hp // h, max(i * hp // h + 1, -(-(i + 1) * hp // h))) for i in range(h)]
    cols = [(j * wp // w, max(j * wp // w + 1, -(-(j + 1) * wp // w))) for j in range(w)]
    out = np.empty((*lead, h, w), dtype=bool)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            out[..., i, j] = mask[..., r0:r1, c0:c1].all(axis=(-2, -1))
    return out
