"""The last-kept pixel test over a batch of frames as one Triton kernel: one launch per batch.

The recurrence only couples a patch with the last kept patch at its own place, so each program
owns one patch location: it holds that patch's reference in registers and walks the batch's frames
in order, writing one mask bit per frame and the final reference once. That replaces the seven
small torch kernels per frame of `LastKeptBatch._body` and needs no CUDA graph.

The arithmetic is `_last_kept.patch_scores` to the bit: exact integer sums per channel, then
s0*k0 + s1*k1 + s2*k2 in float64 from left to right with no fused multiply-add, rounded once to
float32 and compared with float32(tau).

triton is optional: without it `HAS_TRITON` is False and callers use the torch body. Under
TRITON_INTERPRET=1 the kernel runs on CPU tensors (numpy), which is how the unit tests check it.
"""

from __future__ import annotations

import contextlib

import torch

from ._last_kept import float32_threshold
from .errors import CompressorInputError

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # the project runs without triton: `_last_kept` falls back to the torch body
    HAS_TRITON = False

# num_warps: a patch is about a thousand lanes of work (16 x 64 for p = 14), so two warps keep each
# frame's reductions inside a pair of warps (chosen, not tuned). No fp fusion: a fused multiply-add
# would round the score differently from torch's separate multiply and add kernels.
COMPILE_OPTIONS = {"num_warps": 2, "enable_fp_fusion": False}


if HAS_TRITON:
    # Triton makes an int argument equal to 1 a compile-time constant; not n_frames, so a batch of
    # one frame reuses the kernel compiled for every other batch size.
    @triton.jit(do_not_specialize=["n_frames"])
    def _last_kept_kernel(
        frames_ptr,  # [B, H, W, 3] uint8, contiguous
        reference_ptr,  # [hp*p, wp*p, 3] int16, contiguous; read once, written once
        masks_ptr,  # [B, hp, wp] uint8 (a bool tensor's bytes)
        scale_ptr,  # [3] float64
        tau,  # float32(tau)
        n_frames,
        wp,
        frame_stride,  # H*W*3
        frame_row_stride,  # W*3
        reference_row_stride,  # wp*p*3
        P: tl.constexpr,
        ROWS: tl.constexpr,  # next power of two >= P
        COLS: tl.constexpr,  # next power of two >= 3*P: a patch row is 3*P interleaved bytes
    ):
        patch = tl.program_id(0)
        n_patches = tl.num_programs(0)
        y = patch // wp
        x = patch % wp
        rows = tl.arange(0, ROWS)[:, None]
        cols = tl.arange(0, COLS)[None, :]
        is_inside = (rows < P) & (cols < 3 * P)
        channel = tl.arange(0, COLS) % 3  # bytes are RGB-interleaved along a row
        frame_ptrs = frames_ptr + (y * P + rows) * frame_row_stride + x * (3 * P) + cols
        reference_ptrs = reference_ptr + (y * P + rows) * reference_row_stride + x * (3 * P) + cols
        mask_ptr = masks_ptr + patch
        scale0 = tl.load(scale_ptr)
        scale1 = tl.load(scale_ptr + 1)
        scale2 = tl.load(scale_ptr + 2)
        # Lanes outside the patch load 0 in both images, so they add nothing and stay 0.
        kept = tl.load(reference_ptrs, mask=is_inside, other=0).to(tl.int32)
        # `while`, not `for _ in range(n_frames)`: Triton 3.6's interpreter takes a runtime loop bound
        # with int() of a one-element array, which numpy 2.4 refuses.
        remaining = n_frames
        while remaining > 0:
            cur = tl.load(frame_ptrs, mask=is_inside, other=0).to(tl.int32)
            columns = tl.sum(tl.abs(cur - kept), axis=0)  # [COLS]: the patch's rows summed first
            s0 = tl.sum(tl.where(channel == 0, columns, 0))
            s1 = tl.sum(tl.where(channel == 1, columns, 0))
            s2 = tl.sum(tl.where(channel == 2, columns, 0))
            weighted0 = s0.to(tl.float64) * scale0
            weighted1 = s1.to(tl.float64) * scale1
            weighted2 = s2.to(tl.float64) * scale2
            score = ((weighted0 + weighted1) + weighted2).to(tl.float32)
            is_static = score <= tau
            tl.store(mask_ptr, is_static.to(tl.uint8))
            kept = tl.where(is_static, kept, cur)
            # Pointer steps rather than i * stride: 64-bit addresses, no int32 product to overflow.
            frame_ptrs += frame_stride
            mask_ptr += n_patches
            remaining -= 1
        tl.store(reference_ptrs, kept.to(tl.int16), mask=is_inside)


def last_kept_triton(
    frames: torch.Tensor,
    reference: torch.Tensor,
    scale: torch.Tensor,
    patch_size: int,
    tau: float,
    masks_out: torch.Tensor,
) -> None:
    """Test frames [B, H, W, 3] uint8 in order against `reference` ([hp*p, wp*p, 3] int16, the
    whole patches' copy-forward image), in one launch. Writes masks_out [B, hp, wp] bool (True =
    static) and leaves the updated copy-forward image in `reference`. All on one device: CUDA, or
    CPU under TRITON_INTERPRET=1. Pixels past the last whole patch are not read."""
    if not HAS_TRITON:
        raise RuntimeError("triton is not installed")
    p = patch_size
    b, height, width, _ = frames.shape
    hp, wp = height // p, width // p
    dtypes = (frames.dtype, reference.dtype, scale.dtype, masks_out.dtype)
    if dtypes != (torch.uint8, torch.int16, torch.float64, torch.bool):
        raise CompressorInputError(
            f"want uint8 frames, int16 reference, float64 scale, bool masks; got {dtypes}"
        )
    if tuple(reference.shape) != (hp * p, wp * p, 3) or tuple(masks_out.shape) != (b, hp, wp):
        raise CompressorInputError(
            f"for frames {tuple(frames.shape)} and p={p} want reference {(hp * p, wp * p, 3)} and masks "
            f"{(b, hp, wp)}, got {tuple(reference.shape)} and {tuple(masks_out.shape)}"
        )
    if not (reference.is_contiguous() and masks_out.is_contiguous()):
        raise CompressorInputError("reference and masks_out must be contiguous: the kernel writes them")
    if b == 0 or hp * wp == 0:
        return
    frames = frames.contiguous()
    # Triton launches on the current device; the tensors' device may be another one.
    on_device = torch.cuda.device(frames.device) if frames.is_cuda else contextlib.nullcontext()
    with on_device:
        _last_kept_kernel[(hp * wp,)](
            frames,
            reference,
            masks_out.view(torch.uint8),
            scale,
            float32_threshold(tau),  # exact as the float32 Triton makes of a Python float
            b,
            wp,
            height * width * 3,
            width * 3,
            wp * p * 3,
            P=p,
            ROWS=triton.next_power_of_2(p),
            COLS=triton.next_power_of_2(3 * p),
            **COMPILE_OPTIONS,
        )
