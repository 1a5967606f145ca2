"""Original-position policy: survivors of any pruning keep the position they had in the full video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compressor import evs_retention_mask
from compressor.records import SelectedEvent, Selection
from llm.positions import PositionTracker, estimate_seconds_per_grid, vision_positions
from llm.prompt import ContextEvent, context_from_selection

from .conftest import reference_inputs


@pytest.mark.parametrize("interval", [4.0, 1.0, 0.5, 3.0, 0.7])
def test_vision_positions_equal_the_models_own(tiny_model, interval):
    grid = torch.tensor([5, 6, 8])  # patches; merged 3 x 4
    ours = vision_positions(
        np.stack(np.meshgrid(np.arange(5), np.arange(3), np.arange(4), indexing="ij"), -1).reshape(-1, 3),
        base=17,
        interval=interval,
    )
    ref = tiny_model.model.get_vision_position_ids(17, grid, 1, 2, interval)
    np.testing.assert_array_equal(ours, ref.numpy())


def _full_and_pruned(make_runner, event, keep):
    """Visual-token positions of the full-video prompt (stock get_rope_index) and of our pruned prompt."""
    runner = make_runner(kv_prune="none", text_resume="spatial_extent")
    with runner.session() as full, runner.session() as pruned:
        full.prefill_turn("Q?", [ContextEvent.whole(event)])
        pruned.prefill_turn("Q?", [ContextEvent(event, keep)])
        return full, pruned


def _visual_positions(session):
    from llm.prompt import lay_out

    tracker = PositionTracker(session.tracker.tokens_per_second, session.tracker.text_resume)
    layout = lay_out(
        session.transcript, tracker, group_grids=10**6, seconds_per_grid=session.seconds_per_grid
    )
    return layout, layout.positions[:, layout.is_visual]


def test_evs_survivors_keep_their_full_video_positions(make_runner, make_video, tiny_model):
    event, _, grid_thw = make_video(12, 1.0)
    mask = evs_retention_mask(torch.from_numpy(event.tokens), grid_thw[0], 2, q=0.6).numpy()
    keep = np.flatnonzero(mask)
    assert 0 < len(keep) < len(mask)
    full, pruned = _full_and_pruned(make_runner, event, keep)
    full_layout, full_pos = _visual_positions(full)
    _, pruned_pos = _visual_positions(pruned)
    ids, types = reference_inputs(full_layout, tiny_model.config.video_token_id)
    stock, _ = tiny_model.model.get_rope_index(
        ids, mm_token_type_ids=types, video_grid_thw=grid_thw, second_per_grid_ts=torch.tensor([2.0])
    )
    stock_visual = stock[:, 0].numpy()[:, full_layout.is_visual]
    np.testing.assert_array_equal(full_pos, stock_visual)
    np.testing.assert_array_equal(pruned_pos, stock_visual[:, keep])


def test_selected_tokens_keep_their_positions_across_events(make_runner, make_video):
    """Two events of one stream: the second's tokens sit at their stream grids, not after the first."""
    first, _, _ = make_video(8, 1.0, seed=1)
    second, _, _ = make_video(8, 1.0, seed=2)
    shift = 10  # the second event starts 10 grids into the stream
    second = _shifted(second, shift)
    rng = np.random.default_rng(0)
    selection = Selection(
        [
            SelectedEvent(first, np.sort(rng.choice(len(first.tokens), 9, replace=False)), 0.9, 0.5),
            SelectedEvent(second, np.sort(rng.choice(len(second.tokens), 7, replace=False)), 0.8, 0.5),
        ],
        budget_tokens=16,
        tokens_available=len(first.tokens) + len(second.tokens),
    )
    runner = make_runner(kv_prune="none")
    with runner.session() as s:
        s.prefill_turn("Q?", context_from_selection(selection))
        _, positions = _visual_positions(s)
        base = s.tracker.bases["cam"]
    expected = np.concatenate(
        [vision_positions(se.event.positions[se.kept], base, interval=4.0) for se in selection.events], axis=1
    )
    np.testing.assert_array_equal(positions, expected)


def _shifted(event, grids):
    from dataclasses import replace

    positions = event.positions.copy()
    positions[:, 0] += grids
    return replace(
        event,
        event_id=event.event_id + "-late",
        positions=positions,
        grid_t0=event.grid_t0 + grids,
        grid_pts_s=event.grid_pts_s + 2.0 * grids,
        start_pts_s=event.start_pts_s + 2.0 * grids,
        end_pts_s=event.end_pts_s + 2.0 * grids,
    )


def test_text_after_video_resumes_past_the_largest_position_under_max_rule():
    tracker = PositionTracker(tokens_per_second=2, text_resume="max_position")
    tracker.text(3)
    thw = np.array([[0, 0, 0], [5, 1, 1]])
    pos = tracker.visual("cam", thw, (2, 2), seconds_per_grid=2.0)
    assert pos[0].max() == 3 + 20
    assert tracker.text(1)[0, 0] == 3 + 20 + 1


def test_text_after_video_resumes_at_spatial_extent_under_transformers_rule():
    tracker = PositionTracker(tokens_per_second=2, text_resume="spatial_extent")
    tracker.text(3)
    tracker.visual("cam", np.array([[0, 0, 0], [5, 1, 1]]), (2, 3), seconds_per_grid=2.0)
    assert tracker.text(1)[0, 0] == 3 + 3


def test_each_stream_keeps_one_base_across_turns():
    tracker = PositionTracker(tokens_per_second=2)
    tracker.text(5)
    a = tracker.visual("a", np.array([[0, 0, 0]]), (1, 1), 2.0)
    tracker.text(7)
    b = tracker.visual("b", np.array([[0, 0, 0]]), (1, 1), 2.0)
    tracker.text(9)
    a_later = tracker.visual("a", np.array([[3, 0, 0]]), (1, 1), 2.0)
    assert a[1, 0] == a_later[1, 0] == 5
    assert b[1, 0] > 5
    assert a_later[0, 0] == 5 + 12


def test_seconds_per_grid_estimate_ignores_float_noise():
    pts = [np.array([0.0, 1.9999999, 4.0000001, 6.0]), np.array([100.0])]
    assert estimate_seconds_per_grid(pts, default_s=9.0) == 2.0
    assert estimate_seconds_per_grid([np.array([3.0])], default_s=9.0) == 9.0
