"""Our path against the stock transformers model on the same video (tiny random Qwen2.5-VL, CPU, float32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm.positions import PositionTracker
from llm.prompt import ContextEvent, lay_out

from .conftest import installed_text_resume, reference_inputs


def _ours(runner, event, question):
    """Logits of our path's last prompt token, and the layout it prefilled."""
    with runner.session() as s:
        layout_tracker = PositionTracker(s.tracker.tokens_per_second, s.tracker.text_resume)
        logits, _ = s.prefill_turn(question, [ContextEvent.whole(event)])
        pieces = s.transcript
        layout = lay_out(pieces, layout_tracker, group_grids=10**6, seconds_per_grid=s.seconds_per_grid)
    return logits, layout


def _reference(model, layout, pixels, grid_thw, seconds_per_grid):
    ids, types = reference_inputs(layout, model.config.video_token_id)
    with torch.inference_mode():
        out = model(
            input_ids=ids,
            pixel_values_videos=pixels,
            video_grid_thw=grid_thw,
            second_per_grid_ts=torch.tensor([seconds_per_grid]),
            mm_token_type_ids=types,
        )
        positions, _ = model.model.get_rope_index(
            ids,
            mm_token_type_ids=types,
            video_grid_thw=grid_thw,
            second_per_grid_ts=torch.tensor([seconds_per_grid]),
        )
    return out.logits[0, -1], positions[:, 0].numpy()


@pytest.mark.parametrize(
    ("frames", "frame_s", "rule"),
    [
        (4, 0.25, "max_position"),  # temporal extent within the spatial one: every rule agrees
        (4, 0.25, "spatial_extent"),
        (12, 1.0, "installed"),  # t reaches 20 > max(h, w): only the installed model's own rule matches
    ],
)
def test_unpruned_logits_equal_the_stock_model_on_the_same_video(
    make_runner, make_video, tiny_model, frames, frame_s, rule
):
    rule = installed_text_resume(tiny_model) if rule == "installed" else rule
    runner = make_runner(kv_prune="none", text_resume=rule)
    event, pixels, grid_thw = make_video(frames, frame_s)
    seconds_per_grid = 2 * frame_s
    ours, layout = _ours(runner, event, "What happens in the video?")
    ref, ref_positions = _reference(tiny_model, layout, pixels, grid_thw, seconds_per_grid)
    np.testing.assert_array_equal(layout.positions, ref_positions)
    torch.testing.assert_close(ours, ref.float(), atol=1e-4, rtol=1e-4)


def test_keynorm_with_keep_ratio_one_equals_no_pruning(make_runner, make_video):
    event, _, _ = make_video(8, 0.5)
    question = "Where is the red box?"
    full, _ = _ours(make_runner(kv_prune="none"), event, question)
    kept, _ = _ours(make_runner(kv_prune="keynorm", kv_keep_ratio=1.0, kv_group_grids=1), event, question)
    torch.testing.assert_close(kept, full, atol=1e-5, rtol=1e-5)
