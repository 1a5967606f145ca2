"""The Triton pixel test on CUDA: the torch body's bits on a full batch, numpy's decisions in a stream."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from compressor import StaticPatchFilter
from compressor import _pixel_kernel as pixel_kernel
from compressor._last_kept import LastKeptBatch
from compressor.static import _CHANNEL_SCALE
from vidsight.synth.video import background

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.skipif(not pixel_kernel.HAS_TRITON, reason="needs triton"),
]


def moving_box_video(n: int, height: int = 448, width: int = 448, seed: int = 0) -> np.ndarray:
    """[n, H, W, 3] uint8: a static synthetic background with +-3 levels of sensor noise (scores near
    tau, not only 0 and far above it) and a white box sliding right and down a few pixels a frame."""
    rng = np.random.default_rng(seed)
    still = background(width, height, seed).astype(np.int16)
    frames = np.clip(still + rng.integers(-3, 4, (n, height, width, 3)), 0, 255).astype(np.uint8)
    for k in range(n):
        y, x = (20 + 2 * k) % (height - 40), (7 * k) % (width - 60)
        frames[k, y : y + 40, x : x + 60] = 255
    return frames


def test_the_kernel_on_cuda_gives_the_torch_bodys_bits_on_a_full_batch():
    p, tau = 14, 0.1
    video = moving_box_video(65)
    frames = video[1:]  # [64, 448, 448, 3]
    start = torch.from_numpy(video[0].astype(np.int16))  # 448 = 32 * 14: every pixel in a patch
    scale = torch.tensor(_CHANNEL_SCALE / (p * p * 3), dtype=torch.float64)
    body = LastKeptBatch(frames.shape, p, tau, scale, use_kernel=False)  # eager, on the CPU
    body.reference.copy_(start)
    want_masks = body.run(torch.from_numpy(frames)).clone()

    masks = torch.zeros(want_masks.shape, dtype=torch.bool, device="cuda")
    reference = start.cuda()
    pixel_kernel.last_kept_triton(torch.from_numpy(frames).cuda(), reference, scale.cuda(), p, tau, masks)
    assert torch.equal(masks.cpu(), want_masks)
    assert torch.equal(reference.cpu(), body.reference)
    assert 0 < int(want_masks.sum()) < want_masks.numel()


@pytest.mark.parametrize(("height", "width"), [(448, 448), (100, 130)])
def test_process_many_on_cuda_decides_what_numpy_decides_frame_by_frame(height, width, caplog):
    video = moving_box_video(40, height, width, seed=1)
    one, on_gpu = StaticPatchFilter(14, 0.1), StaticPatchFilter(14, 0.1, device="cuda")
    expected = [one.process(frame) for frame in video]
    got = []
    for start, stop in ((0, 16), (16, 32), (32, 40)):  # two batch shapes
        got += on_gpu.process_many(torch.from_numpy(video[start:stop]).cuda())
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
        assert (a.is_frame_static, a.is_segment_start) == (b.is_frame_static, b.is_segment_start)
    np.testing.assert_array_equal(one.reconstruction(), on_gpu.reconstruction())
    assert sum(int((~d.mask).sum()) for d in expected[1:]) > 40  # the box moved
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no fallback from the kernel
