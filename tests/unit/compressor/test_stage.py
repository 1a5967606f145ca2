import dataclasses

import numpy as np
import pytest
import torch

from compressor import Compressor, CompressorInputError, CompressorSettings, merged_static_mask
from vidsight.synth.video import Scene, SceneScript, moving_boxes_script, render_frame

from ._tiny import CountingEncoder, encode_stream

FPS = 2.0


@pytest.fixture(scope="module")
def encoders():
    return CountingEncoder()


def render(script, n):
    times = [k / FPS for k in range(n)]
    return [render_frame(script, t) for t in times], times


def compress(encoded, settings=None, rgbs=None):
    compressor = Compressor(settings or CompressorSettings())
    events = []
    for k, frame in enumerate(encoded):
        events.extend(compressor.process(frame, None if rgbs is None else rgbs[k]))
    return events + compressor.flush()


@pytest.fixture(scope="module")
def boxes_with_cut(encoders):
    script = moving_boxes_script(224, 224, FPS, 12.0, cut_at_s=[6.5])
    frames, times = render(script, 24)
    return frames, encode_stream(encoders, frames, times)


@pytest.mark.parametrize("cut_s", [6.0, 6.5])
def test_the_scripted_cut_is_found_within_one_sample(encoders, cut_s):
    frames, times = render(moving_boxes_script(224, 224, FPS, 12.0, cut_at_s=[cut_s]), 24)
    events = compress(encode_stream(encoders, frames, times))
    cut_frame = round(cut_s * FPS)
    starts = [int(e.event_id.split(":")[1]) for e in events[1:]]
    assert min(abs(s - cut_frame) for s in starts) <= 1


def test_a_fully_static_clip_encodes_once_and_keeps_one_grid_of_tokens(encoders):
    still = SceneScript(224, 224, FPS, 5.0, (Scene(0.0, seed=4),))
    frames, times = render(still, 10)
    before = encoders.tower_grids
    encoded = encode_stream(encoders, frames, times)
    assert encoders.tower_grids - before == 1
    [event] = compress(encoded)
    assert event.stats.encoder_frames_skipped == 9  # every frame after the first
    assert event.stats.tokens_in == 5 * 64 and event.stats.tokens_kept == 64
    assert event.counts.tolist() == [5] * 64


def test_every_changed_token_starts_a_run_at_its_original_position(boxes_with_cut):
    _, encoded = boxes_with_cut
    events = compress(encoded, CompressorSettings(merge_similarity=None))
    static_by_grid = {}
    for f in encoded:
        cell = merged_static_mask(f.static_mask, f.grid_hw)
        static_by_grid[f.grid_index] = static_by_grid.get(f.grid_index, cell) & cell
    for event in events:
        t0, t1 = event.grid_t0, event.grid_t0 + len(event.grid_pts_s)
        expected = {(t0, i, j) for i in range(8) for j in range(8)}
        expected |= {(t, i, j) for t in range(t0 + 1, t1) for i, j in np.argwhere(~static_by_grid[t])}
        assert {tuple(p) for p in event.positions.tolist()} == expected
        assert event.counts.sum() == event.stats.tokens_in


def test_events_cover_the_stream_in_order_with_well_formed_records(boxes_with_cut):
    frames, encoded = boxes_with_cut
    events = compress(encoded, rgbs=frames)
    assert sum(e.stats.frames for e in events) == 24
    assert [e.grid_t0 for e in events] == sorted(e.grid_t0 for e in events)
    for event in events:
        assert event.event_id == f"cam:{event.grid_t0 * 2}"
        assert event.tokens.dtype == np.float16 and event.positions.dtype == np.int32
        keys = [tuple(p) for p in event.positions.tolist()]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        assert np.isclose(np.linalg.norm(event.embedding), 1.0, atol=1e-5)
        assert 1 <= len(event.thumbnails) <= 2 and all(t.startswith(b"\xff\xd8") for t in event.thumbnails)
        assert event.grid_embeddings is not None and event.grid_embeddings.shape[0] == len(event.grid_pts_s)


def test_static_camera_scene_keeps_at_most_a_third_of_the_tokens(boxes_with_cut):
    _, encoded = boxes_with_cut
    events = compress(encoded)
    kept = sum(e.stats.tokens_kept for e in events) / sum(e.stats.tokens_in for e in events)
    assert kept <= 0.35


def test_masks_computed_from_rgb_equal_masks_attached_by_the_encoder(boxes_with_cut):
    frames, encoded = boxes_with_cut
    bare = [dataclasses.replace(f, static_mask=None) for f in encoded]
    with_masks, from_rgb = compress(encoded, rgbs=frames), compress(bare, rgbs=frames)
    assert [e.event_id for e in with_masks] == [e.event_id for e in from_rgb]
    for a, b in zip(with_masks, from_rgb, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.tokens, b.tokens)


def test_evs_prunes_inside_each_event(boxes_with_cut):
    _, encoded = boxes_with_cut
    plain = compress(encoded, CompressorSettings(merge_similarity=None, is_pixel_filter_enabled=False))
    bare = [dataclasses.replace(f, static_mask=None) for f in encoded]
    pruned = compress(
        bare, CompressorSettings(merge_similarity=None, is_pixel_filter_enabled=False, evs_q=0.75)
    )
    assert sum(e.stats.tokens_kept for e in plain) > sum(e.stats.tokens_kept for e in pruned)
    for event in pruned:
        assert event.stats.tokens_kept >= 64  # EVS keeps at least the event's first grid
        assert event.stats.tokens_merged_evs > 0 or len(event.grid_pts_s) == 1


def test_one_compressor_per_stream(boxes_with_cut):
    _, encoded = boxes_with_cut
    compressor = Compressor()
    compressor.process(encoded[0])
    with pytest.raises(CompressorInputError, match="one segmenter per stream"):
        compressor.process(dataclasses.replace(encoded[1], stream_id="other"))


def test_tokens_handed_over_as_tensors_give_the_same_events_as_numpy_tokens(boxes_with_cut):
    frames, encoded = boxes_with_cut
    as_tensors = [
        f if f.tokens is None else dataclasses.replace(f, tokens=torch.from_numpy(np.array(f.tokens)))
        for f in encoded
    ]
    from_numpy, from_tensors = compress(encoded, rgbs=frames), compress(as_tensors, rgbs=frames)
    assert [e.event_id for e in from_numpy] == [e.event_id for e in from_tensors]
    for a, b in zip(from_numpy, from_tensors, strict=True):
        assert b.tokens.dtype == np.float16 and isinstance(b.tokens, np.ndarray)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_array_equal(a.tokens, b.tokens)


def test_batches_give_the_events_that_frame_by_frame_gives(boxes_with_cut):
    """process_many (batched unit rows, token changes and static masks) against process, with
    batches that split pairs and grids at different places; stats and thumbnails included."""
    frames, encoded = boxes_with_cut
    one = compress(encoded, rgbs=frames)
    compressor, batched = Compressor(CompressorSettings()), []
    for start, stop in ((0, 5), (5, 6), (6, 19), (19, len(encoded))):
        rgbs = [frames[f.index] for f in encoded[start:stop]]
        batched += compressor.process_many(encoded[start:stop], rgbs)
    batched += compressor.flush()
    assert len(one) == len(batched) >= 2
    for a, b in zip(one, batched, strict=True):
        assert a.stats == b.stats
        assert a.stats.static_patches > 0
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_array_equal(a.tokens, b.tokens)
        assert a.thumbnails == b.thumbnails


def test_warm_kernels_runs_the_pixel_test_and_the_merge_at_a_streams_sizes():
    """The actor's warm-up path (on the CPU: the torch code, same calls as on the GPU)."""
    from compressor import CompressorSettings, warm_kernels

    warm_kernels("cpu", (56, 84), (2, 3), 16, CompressorSettings(merge_similarity=0.9))
    warm_kernels("cpu", (56, 84), (2, 3), 16, CompressorSettings(merge_similarity=None))
