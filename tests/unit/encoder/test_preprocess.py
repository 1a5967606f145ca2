"""The Qwen2-VL video processor layout, reproduced in torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder.errors import FrameShapeError
from encoder.qwen_preprocess import CLIP_MEAN, CLIP_STD, PatchLayout, preprocess, smart_resize

LAYOUT = PatchLayout(min_pixels=56 * 56, max_pixels=448 * 448)


def _frames(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def _unnormalize(pixel_values: torch.Tensor, layout: PatchLayout) -> torch.Tensor:
    """[N, C*T*p*p] -> [N, C, T, p, p] back in 0..255."""
    p, tp = layout.patch_size, layout.temporal_patch_size
    x = pixel_values.view(-1, 3, tp, p, p)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1, 1) * 255
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1, 1) * 255
    return x * std + mean


@pytest.mark.parametrize(("height", "width"), [(448, 448), (360, 640), (1080, 1920), (20, 30), (1000, 90)])
def test_smart_resize_gives_multiples_of_28_within_pixel_bounds(height: int, width: int) -> None:
    h, w = smart_resize(height, width, 28, LAYOUT.min_pixels, LAYOUT.max_pixels)
    assert h % 28 == 0 and w % 28 == 0
    assert LAYOUT.min_pixels <= h * w <= LAYOUT.max_pixels
    assert abs(h / w - height / width) / (height / width) < 0.35  # aspect kept up to rounding to 28


def test_smart_resize_rejects_extreme_aspect_ratio() -> None:
    with pytest.raises(FrameShapeError, match="aspect ratio"):
        smart_resize(10, 3000, 28, LAYOUT.min_pixels, LAYOUT.max_pixels)


@pytest.mark.parametrize("n_frames", [1, 2, 5, 6])
def test_grid_thw_counts_pairs_and_odd_last_frame_is_repeated(n_frames: int) -> None:
    pixel_values, grid_thw = preprocess(_frames(n_frames, 360, 640), LAYOUT)
    t, gh, gw = grid_thw[0].tolist()
    assert t == (n_frames + 1) // 2
    assert (gh * 14, gw * 14) == smart_resize(360, 640, 28, LAYOUT.min_pixels, LAYOUT.max_pixels)
    assert pixel_values.shape == (t * gh * gw, 3 * 2 * 14 * 14)
    last_grid = pixel_values[-gh * gw :].view(-1, 3, 2, 14, 14)
    halves_equal = torch.equal(last_grid[:, :, 0], last_grid[:, :, 1])
    assert halves_equal == (n_frames % 2 == 1)


def test_patches_are_ordered_by_merge_block_then_row_and_column_inside_it() -> None:
    # 56x84 frames, no resize: 4x6 patches, 2x3 merge blocks; pixel value = 10 * frame + patch id
    height, width = 56, 84
    rows, cols = height // 14, width // 14
    patch_id = np.arange(rows * cols).reshape(rows, cols).repeat(14, 0).repeat(14, 1)
    frames = [np.repeat((10 * f + patch_id)[..., None], 3, axis=2).astype(np.uint8) for f in range(2)]
    layout = PatchLayout(fixed_hw_px=(height, width))
    pixel_values, grid_thw = preprocess(frames, layout)
    assert grid_thw.tolist() == [[1, rows, cols]]
    patches = _unnormalize(pixel_values, layout).round()  # [N, C, T, p, p]
    expected_order = [
        br * 2 * cols + bc * 2 + r * cols + c  # patch id of (block row, block col, row, col)
        for br in range(rows // 2)
        for bc in range(cols // 2)
        for r in range(2)
        for c in range(2)
    ]
    assert patches[:, 0, 0, 0, 0].tolist() == [float(i) for i in expected_order]
    # each patch vector is [C, T, p, p]: the temporal axis separates the two frames
    assert torch.equal(patches[:, :, 1] - patches[:, :, 0], torch.full_like(patches[:, :, 0], 10.0))


def test_channels_are_normalised_with_clip_mean_and_std() -> None:
    frame = np.zeros((28, 28, 3), np.uint8)
    frame[..., 1] = 255
    pixel_values, _ = preprocess([frame], PatchLayout(fixed_hw_px=(28, 28)))
    per_channel = pixel_values.view(-1, 3, 2 * 14 * 14)[:, :, 0][0]
    expected = [
        (0 - CLIP_MEAN[0]) / CLIP_STD[0],
        (1 - CLIP_MEAN[1]) / CLIP_STD[1],
        -CLIP_MEAN[2] / CLIP_STD[2],
    ]
    assert per_channel.tolist() == pytest.approx(expected, abs=1e-5)


def test_frames_of_different_sizes_in_one_clip_are_refused() -> None:
    with pytest.raises(FrameShapeError, match="share a size"):
        preprocess([*_frames(1, 100, 100), *_frames(1, 120, 100)], LAYOUT)


@pytest.mark.parametrize(("height", "width", "n_frames"), [(360, 640, 5), (448, 448, 2), (1080, 1920, 3)])
def test_preprocess_equals_transformers_video_processor(height: int, width: int, n_frames: int) -> None:
    pytest.importorskip("torchvision")  # transformers' Qwen2-VL processors need it
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    frames = _frames(n_frames, height, width)
    processor = Qwen2VLVideoProcessor(min_pixels=LAYOUT.min_pixels, max_pixels=LAYOUT.max_pixels)
    reference = processor(videos=[np.stack(frames)], return_tensors="pt", cap_pixels_per_frame=False)
    pixel_values, grid_thw = preprocess(frames, LAYOUT)
    assert grid_thw.tolist() == reference["video_grid_thw"].tolist()
    assert torch.allclose(pixel_values, reference["pixel_values_videos"].float(), atol=1e-5)


def test_frames_already_uploaded_preprocess_exactly_like_host_frames() -> None:
    """Frames that come as tensors (the pixel test's copy on the device) give the same patches as
    the numpy frames they were made from; bad tensors are refused like bad arrays."""
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (56, 84, 3), dtype=np.uint8) for _ in range(3)]
    layout = LAYOUT
    host, thw = preprocess(frames, layout)
    tensors, thw_t = preprocess([torch.from_numpy(f) for f in frames], layout)
    assert torch.equal(host, tensors) and torch.equal(thw, thw_t)
    with pytest.raises(FrameShapeError, match="uint8"):
        preprocess([torch.zeros((56, 84, 3), dtype=torch.float32)], layout)
    with pytest.raises(FrameShapeError, match="share a size"):
        preprocess([torch.from_numpy(frames[0]), torch.zeros((28, 84, 3), dtype=torch.uint8)], layout)
