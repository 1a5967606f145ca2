"""The Triton pixel-test kernel decides, bit for bit, what the torch body of `LastKeptBatch` decides.

Without a GPU the kernel runs on CPU tensors in Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1), which costs milliseconds per patch and frame: frames here are small.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from compressor import CompressorInputError
from compressor import _pixel_kernel as pixel_kernel
from compressor._last_kept import LastKeptBatch
from compressor.static import _CHANNEL_SCALE, patch_differences
from vidsight.synth.video import Box, Scene, SceneScript, render_frame

pytest.importorskip("triton", reason="the pixel-test kernel needs triton (its interpreter on a CPU)")
IS_INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
pytestmark = pytest.mark.skipif(
    not IS_INTERPRETED and not torch.cuda.is_available(),
    reason="Triton kernels need CUDA or TRITON_INTERPRET=1 (set by conftest without a GPU)",
)
DEVICE = "cpu" if IS_INTERPRETED else "cuda"


def channel_scale(p: int, device: str = "cpu") -> torch.Tensor:
    return torch.tensor(_CHANNEL_SCALE / (p * p * 3), dtype=torch.float64, device=device)


def whole_patches(rgb: np.ndarray, p: int) -> torch.Tensor:
    """[hp*p, wp*p, 3] int16: the reference image the recurrence starts from."""
    hp, wp = rgb.shape[0] // p, rgb.shape[1] // p
    return torch.from_numpy(rgb[: hp * p, : wp * p].astype(np.int16))


def torch_body(frames: np.ndarray, reference: torch.Tensor, p: int, tau: float):
    """The definition: LastKeptBatch's torch ops, run eagerly on the CPU."""
    batch = LastKeptBatch(frames.shape, p, tau, channel_scale(p), use_kernel=False)
    batch.reference.copy_(reference)
    masks = batch.run(torch.from_numpy(frames)).clone()
    return masks, batch.reference.clone()


def kernel(frames: np.ndarray, reference: torch.Tensor, p: int, tau: float):
    b, h, w, _ = frames.shape
    masks = torch.ones((b, h // p, w // p), dtype=torch.bool, device=DEVICE)  # all overwritten
    out = reference.to(DEVICE).clone()
    pixel_kernel.last_kept_triton(
        torch.from_numpy(frames).to(DEVICE), out, channel_scale(p, DEVICE), p, tau, masks
    )
    return masks.cpu(), out.cpu()


def assert_kernel_is_the_torch_body(frames: np.ndarray, reference: torch.Tensor, p: int, tau: float):
    """Returns the (equal) masks [B, hp, wp] and final reference [hp*p, wp*p, 3]."""
    want_masks, want_reference = torch_body(frames, reference, p, tau)
    got_masks, got_reference = kernel(frames, reference, p, tau)
    assert torch.equal(got_masks, want_masks)
    assert torch.equal(got_reference, want_reference)
    return want_masks, want_reference


def noisy_frames(n: int, size: tuple[int, int], p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random base image and n frames of it plus noise whose amplitude (0-15 grey levels) varies
    by patch, so a batch has static and kept patches both."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    amplitude = rng.integers(0, 16, (h // p + 1, w // p + 1)).repeat(p, 0).repeat(p, 1)[:h, :w, None]
    frames = [
        np.clip(base + rng.integers(-amplitude, amplitude + 1, (h, w, 3)), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]
    return base, np.stack(frames)


@pytest.mark.parametrize(
    ("size", "n_frames", "p"),
    [((56, 70), 8, 14), ((100, 130), 2, 14), ((56, 70), 1, 14), ((20, 27), 4, 5)],
)
def test_noisy_frames_give_the_torch_bodys_masks_and_reference(size, n_frames, p):
    base, frames = noisy_frames(n_frames, size, p, seed=n_frames)
    masks, _ = assert_kernel_is_the_torch_body(frames, whole_patches(base, p), p, 0.1)
    assert 0 < int(masks.sum()) < masks.numel()  # both outcomes occur: not a vacuous match


def test_pixels_past_the_last_whole_patch_change_nothing():
    p = 14
    base, frames = noisy_frames(3, (45, 61), p, seed=1)
    reference = whole_patches(base, p)
    masks, new_reference = assert_kernel_is_the_torch_body(frames, reference, p, 0.1)
    scribbled = frames.copy()
    rng = np.random.default_rng(2)
    scribbled[:, 42:] = rng.integers(0, 256, scribbled[:, 42:].shape, dtype=np.uint8)
    scribbled[:, :, 56:] = rng.integers(0, 256, scribbled[:, :, 56:].shape, dtype=np.uint8)
    got_masks, got_reference = kernel(scribbled, reference, p, 0.1)
    assert torch.equal(got_masks, masks)
    assert torch.equal(got_reference, new_reference)


def test_a_moving_box_is_kept_where_it_moves_and_the_background_is_never_kept():
    """Last-kept rule, triangle inequality: a patch that changed by more than 2 tau since the previous
    frame is at more than tau from its last kept version, so it is kept."""
    p, tau, fps = 14, 0.1, 10.0
    box = Box(color=(250, 30, 40), size_px=(24, 18), start_xy=(2.0, 30.0), velocity_px_s=(90.0, 40.0))
    script = SceneScript(
        width=130, height=100, fps=fps, duration_s=1.0, scenes=(Scene(0.0, seed=4, boxes=(box,)),)
    )
    video = np.stack([render_frame(script, i / fps) for i in range(5)])
    masks, _ = assert_kernel_is_the_torch_body(video[1:], whole_patches(video[0], p), p, tau)
    hp, wp = masks.shape[1:]
    touched = np.zeros((hp, wp), dtype=bool)
    for i in range(5):
        x0, y0, x1, y1 = box.rect_at(i / fps, script.width, script.height)
        touched[y0 // p : -(-y1 // p), x0 // p : -(-x1 // p)] = True
    for i, mask in enumerate(masks.numpy(), start=1):
        moved = patch_differences(video[i - 1], video[i], p) > 2 * tau + 1e-4
        assert moved.any()
        assert not (mask & moved).any()
        assert mask[~touched].all()


def exact_scores(reference: np.ndarray, frame: np.ndarray, p: int) -> np.ndarray:
    """[hp, wp] float32: integer channel sums, s0*k0 + s1*k1 + s2*k2 in float64 left to right
    (numpy ufuncs, one rounding each), rounded to float32: the definition, written a third time."""
    hp, wp = frame.shape[0] // p, frame.shape[1] // p
    diff = np.abs(frame[: hp * p, : wp * p].astype(np.int64) - reference[: hp * p, : wp * p])
    sums = diff.reshape(hp, p, wp, p, 3).sum(axis=(1, 3))
    k = _CHANNEL_SCALE / (p * p * 3)
    return ((sums[..., 0] * k[0] + sums[..., 1] * k[1]) + sums[..., 2] * k[2]).astype(np.float32)


@pytest.mark.parametrize(
    ("tau_from_score", "is_tie_static"),
    [
        (float, True),  # tau is the score exactly
        (lambda t: float(np.nextafter(np.float32(t), np.float32(-1))), False),  # one float32 below
        (lambda t: float(np.nextafter(float(t), -1.0)), True),  # below in float64, float32(tau) == t
        (lambda t: float(np.nextafter(float(t), 2.0)), True),  # above in float64, float32(tau) == t
    ],
    ids=["equal", "float32_below", "float64_below", "float64_above"],
)
def test_a_score_on_tau_is_static_and_a_float32_step_below_is_kept(tau_from_score, is_tie_static):
    """Frames: original + noise, the same again (nothing new), then the original back (a patch kept
    at frame 1 has moved away from its reference again; a static one never left it)."""
    p = 14
    rng = np.random.default_rng(9)
    original = np.full((28, 56, 3), 120, dtype=np.uint8)
    noisy = (original + rng.integers(0, 12, original.shape)).astype(np.uint8)
    scores = exact_scores(original, noisy, p)  # [2, 4], distinct
    tie = np.sort(scores.ravel())[3]
    tau = tau_from_score(tie)
    frames = np.stack([noisy, noisy, original])
    masks, reference = assert_kernel_is_the_torch_body(frames, whole_patches(original, p), p, tau)
    first = (scores < tie) | ((scores == tie) & is_tie_static)
    assert 0 < first.sum() < first.size
    np.testing.assert_array_equal(masks[0].numpy(), first)
    assert masks[1].all()
    np.testing.assert_array_equal(masks[2].numpy(), first)
    assert torch.equal(reference, whole_patches(original, p))


def test_last_kept_batch_on_request_runs_the_kernel_on_the_cpu(monkeypatch):
    base, frames = noisy_frames(4, (28, 42), 14, seed=3)
    calls = []
    real = pixel_kernel.last_kept_triton
    monkeypatch.setattr(pixel_kernel, "last_kept_triton", lambda *a: calls.append(1) or real(*a))
    want_masks, want_reference = torch_body(frames, whole_patches(base, 14), 14, 0.1)
    batch = LastKeptBatch(frames.shape, 14, 0.1, channel_scale(14, DEVICE), use_kernel=True)
    batch.reference.copy_(whole_patches(base, 14))
    masks = batch.run(torch.from_numpy(frames).to(DEVICE))
    assert calls == [1]
    assert torch.equal(masks.cpu(), want_masks)
    assert torch.equal(batch.reference.cpu(), want_reference)


def test_by_default_a_cpu_batch_runs_the_torch_body(monkeypatch):
    monkeypatch.setattr(pixel_kernel, "last_kept_triton", lambda *a: pytest.fail("kernel ran"))
    _, frames = noisy_frames(2, (28, 28), 14, seed=4)
    batch = LastKeptBatch(frames.shape, 14, 0.1, channel_scale(14))
    batch.run(torch.from_numpy(frames))


def test_without_triton_the_torch_body_runs_silently(monkeypatch, caplog):
    monkeypatch.setattr(pixel_kernel, "HAS_TRITON", False)
    base, frames = noisy_frames(2, (28, 28), 14, seed=5)
    want_masks, _ = torch_body(frames, whole_patches(base, 14), 14, 0.1)
    batch = LastKeptBatch(frames.shape, 14, 0.1, channel_scale(14), use_kernel=True)
    batch.reference.copy_(whole_patches(base, 14))
    assert torch.equal(batch.run(torch.from_numpy(frames)), want_masks)
    assert not caplog.records


def test_a_failing_kernel_warns_once_and_the_torch_body_takes_over(monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("no kernel today")

    monkeypatch.setattr(pixel_kernel, "last_kept_triton", broken)
    base, frames = noisy_frames(4, (28, 42), 14, seed=6)
    want_masks, want_reference = torch_body(frames, whole_patches(base, 14), 14, 0.1)
    batch = LastKeptBatch((2, 28, 42, 3), 14, 0.1, channel_scale(14), use_kernel=True)
    batch.reference.copy_(whole_patches(base, 14))
    masks = [batch.run(torch.from_numpy(frames[i : i + 2])).clone() for i in (0, 2)]
    assert torch.equal(torch.cat(masks), want_masks)
    assert torch.equal(batch.reference, want_reference)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no kernel today" in warnings[0].getMessage()


def test_the_kernel_refuses_buffers_of_the_wrong_type():
    frames = torch.zeros((2, 28, 28, 3), dtype=torch.uint8, device=DEVICE)
    masks = torch.zeros((2, 2, 2), dtype=torch.bool, device=DEVICE)
    wrong = torch.zeros((28, 28, 3), dtype=torch.uint8, device=DEVICE)  # not int16
    with pytest.raises(CompressorInputError, match="int16 reference"):
        pixel_kernel.last_kept_triton(frames, wrong, channel_scale(14, DEVICE), 14, 0.1, masks)


def sm90_ptx() -> str:
    """The kernel's PTX for an H100 (sm_90) with the launcher's options; needs no GPU, but a
    process where TRITON_INTERPRET is unset (interpreted `tl` helpers cannot be compiled)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    signature = {"frames_ptr": "*u8", "reference_ptr": "*i16", "masks_ptr": "*u8", "scale_ptr": "*fp64"}
    signature |= {"tau": "fp32"} | dict.fromkeys(
        ("n_frames", "wp", "frame_stride", "frame_row_stride", "reference_row_stride"), "i32"
    )
    signature |= dict.fromkeys(("P", "ROWS", "COLS"), "constexpr")
    ast = ASTSource(pixel_kernel._last_kept_kernel, signature, constexprs={"P": 14, "ROWS": 16, "COLS": 64})
    return compile(ast, target=GPUTarget("cuda", 90, 32), options=pixel_kernel.COMPILE_OPTIONS).asm["ptx"]


def test_the_kernel_compiles_for_an_h100_without_fused_multiply_adds():
    """The interpreter never fuses, so bit-exactness on a GPU rests on the launch options: build the
    kernel with them for sm_90 and read its PTX."""
    from triton.backends import backends

    if "nvidia" not in backends:
        pytest.skip("this triton has no NVIDIA backend")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = "from tests.unit.compressor.test_pixel_kernel import sm90_ptx; print(sm90_ptx())"
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "add.rn.f64" in done.stdout and "cvt.rn.f32.f64" in done.stdout  # the score is computed here
    assert "fma.rn.f64" not in done.stdout
