"""The pipeline's CUDA paths: the graphed pixel test, pixels shared with the encoder, thumbnails."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from compressor import StaticPatchFilter
from encoder import Encoder
from encoder.config import EncoderSettings
from ingest import Frame
from vidsight.event_stage import shrink_frames

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _moving_box_frames(n: int, size: int = 112, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    frames = []
    for k in range(n):
        frame = np.clip(background.astype(np.int16) + rng.integers(-3, 4, background.shape), 0, 255)
        frame = frame.astype(np.uint8)
        frame[20:48, 5 * k : 5 * k + 28] = 255  # a box sliding right, a few pixels a frame
        frames.append(frame)
    return frames


def test_graphed_pixel_test_decides_what_numpy_decides_frame_by_frame() -> None:
    frames = _moving_box_frames(23)
    one, on_gpu = StaticPatchFilter(14, 0.1), StaticPatchFilter(14, 0.1, device="cuda")
    expected = [one.process(f) for f in frames]
    got = []
    for start in (0, 8, 16):  # two full batches and a short one: two graph shapes
        batch = torch.from_numpy(np.stack(frames[start : start + 8])).cuda()
        got += on_gpu.process_many(batch)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.is_frame_static == b.is_frame_static
    np.testing.assert_array_equal(one.reconstruction(), on_gpu.reconstruction())
    assert sum(int((~d.mask).sum()) for d in expected[1:]) > 20  # the box moved


def test_pixels_already_on_the_device_encode_exactly_like_host_frames() -> None:
    settings = EncoderSettings(device="cuda", vlm_model="tiny", retrieval_model="tiny", seed=0)
    encoder = Encoder(settings, tokens_on_device=True)
    rgbs = _moving_box_frames(7)
    frames = [Frame("s", i, i * 3000, Fraction(1, 90000), rgb) for i, rgb in enumerate(rgbs)]
    host = encoder.encode(frames[:5]) + encoder.encode(frames[5:]) + encoder.flush()
    encoder.forget("s")
    rows = list(torch.from_numpy(np.stack(rgbs)).cuda())
    shared = encoder.encode(frames[:5], pixels=rows[:5]) + encoder.encode(frames[5:], pixels=rows[5:])
    shared += encoder.flush()
    assert [r.index for r in host] == [r.index for r in shared] == list(range(7))
    for a, b in zip(host, shared, strict=True):
        np.testing.assert_array_equal(a.embedding, b.embedding)
        assert (a.tokens is None) == (b.tokens is None)
        if a.tokens is not None:
            assert torch.equal(a.tokens, b.tokens)


def test_thumbnails_are_area_means_on_the_gpu_as_on_the_cpu() -> None:
    batch = torch.from_numpy(np.stack(_moving_box_frames(3, size=448))).cuda()
    on_gpu, on_cpu = shrink_frames(batch, 192), shrink_frames(batch.cpu(), 192)
    assert on_gpu.shape == (3, 192, 192, 3)
    assert np.abs(on_gpu.astype(int) - on_cpu.astype(int)).max() <= 1
