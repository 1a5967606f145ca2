import math

import numpy as np
import pytest
import torch

from compressor import CompressorInputError, StaticPatchFilter, merged_static_mask, psnr_db, static_patch_mask

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def reference_mask(prev, cur, p, tau):
    """The RLT definition, spelled out: normalise, then mean |difference| per patch and channel."""
    a = (prev / 255.0 - MEAN) / STD
    b = (cur / 255.0 - MEAN) / STD
    hp, wp = cur.shape[0] // p, cur.shape[1] // p
    out = np.zeros((hp, wp), bool)
    for i in range(hp):
        for j in range(wp):
            patch = np.abs(
                a[i * p : (i + 1) * p, j * p : (j + 1) * p] - b[i * p : (i + 1) * p, j * p : (j + 1) * p]
            )
            out[i, j] = patch.mean() <= tau
    return out


@pytest.mark.parametrize("shape", [(56, 84), (50, 61), (28, 28)])
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.3])
def test_mask_equals_the_normalised_mean_absolute_difference(shape, tau):
    rng = np.random.default_rng(7)
    prev = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    noise = rng.integers(-40, 41, (*shape, 3)) * (rng.random((*shape, 1)) < 0.5)
    cur = np.clip(prev.astype(int) + noise, 0, 255).astype(np.uint8)
    mask = static_patch_mask(prev, cur, 14, tau)
    assert mask.shape == (shape[0] // 14, shape[1] // 14)
    np.testing.assert_array_equal(mask, reference_mask(prev, cur, 14, tau))
    on_device = static_patch_mask(torch.from_numpy(prev), torch.from_numpy(cur), 14, tau)
    np.testing.assert_array_equal(on_device.numpy(), mask)


def test_six_grey_levels_is_about_the_default_threshold():
    prev = np.full((28, 28, 3), 100, np.uint8)
    assert static_patch_mask(prev, prev + 5, 14).all()
    assert not static_patch_mask(prev, prev + 8, 14).any()


def box_frames(n, p=14, size=(84, 112), box=2):
    """A textured background and a textured box of box x box patches moving one patch right per
    frame: where the box overlaps its last position, its content still moves."""
    rng = np.random.default_rng(3)
    background = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    texture = rng.integers(0, 256, (box * p, box * p, 3), dtype=np.uint8)
    frames, boxes = [], []
    for k in range(n):
        frame = background.copy()
        r0, c0 = p, k * p
        frame[r0 : r0 + box * p, c0 : c0 + box * p] = texture
        cells = {(r0 // p + i, c0 // p + j) for i in range(box) for j in range(box)}
        frames.append(frame)
        boxes.append(cells)
    return frames, boxes


@pytest.mark.parametrize("device", [None, "cpu"])  # numpy, or torch tensors on a device
def test_every_patch_the_box_touches_now_or_in_the_last_kept_frame_is_kept(device):
    frames, boxes = box_frames(5)
    patch_filter = StaticPatchFilter(14, 0.1, device=device)
    first = patch_filter.process(frames[0])
    assert first.is_segment_start and not first.mask.any()
    for k in range(1, 5):
        result = patch_filter.process(frames[k])
        dynamic = {tuple(c) for c in np.argwhere(~result.mask)}
        assert dynamic == boxes[k] | boxes[k - 1]
        np.testing.assert_array_equal(patch_filter.reconstruction(), frames[k])


def test_dropped_patches_are_copied_from_the_last_kept_patch():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 200, (28, 28, 3), dtype=np.uint8)
    patch_filter = StaticPatchFilter(14, 0.1)
    patch_filter.process(frame)
    nudged = frame.copy()
    nudged[:14, :14] += 2  # under tau: dropped
    result = patch_filter.process(nudged)
    assert result.mask.all() and result.is_frame_static
    np.testing.assert_array_equal(patch_filter.reconstruction(), frame)


def drift_psnr(reference, device=None):
    """A frame brightening one grey level per sample: each step is under tau, the sum is not."""
    rng = np.random.default_rng(1)
    base = rng.integers(60, 150, (56, 56, 3)).astype(np.int16)
    patch_filter = StaticPatchFilter(14, 0.1, reference=reference, device=device)
    psnrs = []
    for k in range(40):
        frame = (base + k).astype(np.uint8)
        patch_filter.process(frame)
        psnrs.append(psnr_db(patch_filter.reconstruction(), frame))
    return min(psnrs)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_last_kept_reference_beats_previous_frame_on_a_slow_drift(device):
    last_kept, previous = drift_psnr("last_kept", device), drift_psnr("previous", device)
    assert last_kept >= 34.0  # the error stays under tau: at most 5 grey levels
    assert previous < 20.0  # the previous-frame rule never fires: the error adds up to 39 levels


def test_a_fully_static_clip_skips_the_encoder_after_the_first_frame():
    frame = np.random.default_rng(2).integers(0, 256, (56, 84, 3), dtype=np.uint8)
    patch_filter = StaticPatchFilter(14, 0.1)
    results = [patch_filter.process(frame.copy()) for _ in range(6)]
    assert [r.is_frame_static for r in results] == [False] + [True] * 5


def test_segment_start_keeps_the_frame_whole():
    frame = np.zeros((28, 28, 3), np.uint8)
    patch_filter = StaticPatchFilter(14, 0.1)
    patch_filter.process(frame)
    result = patch_filter.process(frame, is_segment_start=True)
    assert result.is_segment_start and not result.mask.any() and not result.is_frame_static


def test_a_merged_token_is_static_only_when_all_its_patches_are():
    mask = np.ones((4, 6), bool)
    mask[1, 3] = False  # token (0, 1) covers patches rows 0-1, cols 2-3
    merged = merged_static_mask(mask, (2, 3))
    expected = np.ones((2, 3), bool)
    expected[0, 1] = False
    np.testing.assert_array_equal(merged, expected)


def test_uneven_grids_map_each_token_to_the_patches_it_overlaps():
    mask = np.ones((5, 5), bool)
    mask[2, 2] = False  # the middle patch straddles tokens (0|1, 0|1) of a 2x2 grid
    merged = merged_static_mask(mask, (2, 2))
    assert not merged.any()


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr_db(a, a) == math.inf
    assert psnr_db(a, a + 1) == pytest.approx(20 * math.log10(255))


def test_rejects_frames_of_different_sizes():
    with pytest.raises(CompressorInputError, match="differ in size"):
        static_patch_mask(np.zeros((28, 28, 3), np.uint8), np.zeros((28, 42, 3), np.uint8), 14)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_copy_forward_writes_kept_patches_when_the_frame_is_not_a_multiple_of_the_patch(device):
    rng = np.random.default_rng(8)
    first = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)
    second = first.copy()
    second[14:28, 28:42] = 255 - second[14:28, 28:42]  # one whole patch changes a lot
    second[44, 60] = 0  # a pixel outside every whole patch
    patch_filter = StaticPatchFilter(14, 0.1, device=device)
    patch_filter.process(first)
    result = patch_filter.process(second)
    assert np.argwhere(~result.mask).tolist() == [[1, 2]]
    np.testing.assert_array_equal(patch_filter.reconstruction(), second)


@pytest.mark.parametrize("reference", ["last_kept", "previous"])
@pytest.mark.parametrize("crop", [0, 5])  # 5: pixels past the last whole patch
def test_a_batch_on_a_device_decides_what_frame_by_frame_decides(reference, crop):
    rng = np.random.default_rng(5)
    frames, _ = box_frames(6, size=(84 - crop, 112 + crop))
    frames = [
        np.clip(f.astype(np.int16) + rng.integers(-3, 4, f.shape), 0, 255).astype(np.uint8) for f in frames
    ]
    one, many = (
        StaticPatchFilter(14, 0.1, reference=reference),
        StaticPatchFilter(14, 0.1, reference=reference, device="cpu"),
    )
    expected = [one.process(f) for f in frames]
    got = many.process_many(frames[:2]) + many.process_many(frames[2:])
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
        assert (a.is_frame_static, a.is_segment_start) == (b.is_frame_static, b.is_segment_start)
    np.testing.assert_array_equal(one.reconstruction(), many.reconstruction())


def test_a_tensor_batch_and_single_frames_in_between_keep_one_reference():
    """Batches already on the device, with `process` calls between them: the batched test starts
    from wherever the reference is, so every decision equals the frame-by-frame one."""
    rng = np.random.default_rng(7)
    frames, _ = box_frames(9, size=(84, 154))
    frames = [
        np.clip(f.astype(np.int16) + rng.integers(-3, 4, f.shape), 0, 255).astype(np.uint8) for f in frames
    ]
    one, mixed = StaticPatchFilter(14, 0.1), StaticPatchFilter(14, 0.1, device="cpu")
    expected = [one.process(f) for f in frames]
    got = mixed.process_many(torch.from_numpy(np.stack(frames[:3])))
    got += [mixed.process(frames[3])]
    got += mixed.process_many(torch.from_numpy(np.stack(frames[4:8])))
    got += mixed.process_many(torch.from_numpy(np.stack(frames[8:])))  # another batch shape
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
        assert (a.is_frame_static, a.is_segment_start) == (b.is_frame_static, b.is_segment_start)
    np.testing.assert_array_equal(one.reconstruction(), mixed.reconstruction())
    assert sum(not d.mask.all() for d in expected[1:]) >= 4  # the box moved: not a vacuous match


def test_a_tensor_batch_needs_a_device_filter():
    with pytest.raises(CompressorInputError, match="filter's device"):
        StaticPatchFilter(14, 0.1).process_many(torch.zeros((2, 28, 28, 3), dtype=torch.uint8))


def test_streams_sharing_batch_buffers_each_keep_their_own_reference():
    """Two cameras with batches of one shape go through one set of shared buffers (one CUDA graph
    on a GPU), interleaved: each still decides exactly what it decides alone; the buffers are
    bounded by batch shapes, not by cameras."""
    from compressor import _last_kept

    rng = np.random.default_rng(11)
    a_frames, _ = box_frames(7, size=(84, 154))
    b_frames = [np.ascontiguousarray(f[:, ::-1]) for f in a_frames]  # the box drives the other way
    b_frames = [
        np.clip(f.astype(np.int16) + rng.integers(-4, 5, f.shape), 0, 255).astype(np.uint8) for f in b_frames
    ]
    expected = {}
    for name, frames in (("a", a_frames), ("b", b_frames)):
        alone = StaticPatchFilter(14, 0.1)
        expected[name] = [alone.process(f) for f in frames]
    filters = {"a": StaticPatchFilter(14, 0.1, device="cpu"), "b": StaticPatchFilter(14, 0.1, device="cpu")}
    got = {"a": [], "b": []}
    for start in (0, 1, 4):  # batches [0:1], [1:4], [4:7]: shapes (1, ...) and (3, ...)
        stop = {0: 1, 1: 4, 4: 7}[start]
        for name, frames in (("a", a_frames), ("b", b_frames)):
            got[name] += filters[name].process_many(torch.from_numpy(np.stack(frames[start:stop])))
    for name in ("a", "b"):
        for x, y in zip(expected[name], got[name], strict=True):
            np.testing.assert_array_equal(x.mask, y.mask)
    assert len(_last_kept._shared) <= _last_kept._MAX_SHAPES
    assert not np.array_equal(expected["a"][3].mask, expected["b"][3].mask)  # different scenes
