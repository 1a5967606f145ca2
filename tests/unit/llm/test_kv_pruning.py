"""KV-cache pruning: key norm per layer and group, SnapKV question window; text never pruned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm.prompt import ContextEvent
from llm.pruning import grouped_topk_keep, kept_count, keynorm_keep, window_scores


def test_keynorm_keeps_text_and_the_smallest_visual_keys():
    keys = torch.zeros(1, 2, 8, 4)
    norms = torch.tensor([9.0, 1.0, 5.0, 2.0, 8.0, 3.0, 7.0, 4.0])
    keys[0, 0, :, 0] = norms
    is_visual = torch.tensor([False, True, True, True, True, True, True, False])
    kept = keynorm_keep(keys, is_visual, n_text=2, n_keep_visual=3)
    assert kept.tolist() == [0, 1, 3, 5, 7]  # text rows 0 and 7 despite large norms; visual 1, 2, 3 smallest


def test_keynorm_scores_keys_not_values(make_runner, make_video):
    """Per layer, the first group's kept rows are exactly its smallest-norm visual keys (from an unpruned
    run of the same prompt), and layers disagree on which tokens those are."""
    event, _, _ = make_video(8, 0.5)
    full_runner = make_runner(kv_prune="none")
    pruned_runner = make_runner(kv_prune="keynorm", kv_keep_ratio=0.5, kv_group_grids=1000)
    with full_runner.session() as full, pruned_runner.session() as pruned:
        full.prefill_turn("Q?", [ContextEvent.whole(event)])
        pruned.prefill_turn("Q?", [ContextEvent.whole(event)])
        n_full, n_kept = full.cache.length, pruned.cache.length
        visual = len(event.tokens)
        assert n_kept == n_full - visual + kept_count(visual, 0.5)
        is_visual = torch.zeros(n_full, dtype=torch.bool)
        first_visual = _first_visual_row(full)
        is_visual[first_visual : first_visual + visual] = True
        chosen = []
        for layer in range(len(full.cache.k)):
            keys = full.cache.k[layer][:, :, :n_full]
            rows = keynorm_keep(keys, is_visual, n_full - visual, kept_count(visual, 0.5))
            torch.testing.assert_close(pruned.cache.k[layer][:, :, :n_kept], keys[:, :, rows])
            torch.testing.assert_close(pruned.cache.v[layer][:, :, :n_kept], full.cache.v[layer][:, :, rows])
            chosen.append(set(rows.tolist()))
        assert len({frozenset(c) for c in chosen}) > 1


def _first_visual_row(session) -> int:
    from llm.positions import PositionTracker
    from llm.prompt import lay_out

    tracker = PositionTracker(session.tracker.tokens_per_second, session.tracker.text_resume)
    layout = lay_out(
        session.transcript, tracker, group_grids=10**6, seconds_per_grid=session.seconds_per_grid
    )
    return int(np.flatnonzero(layout.is_visual)[0])


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
@pytest.mark.parametrize("mode", ["keynorm", "snapkv"])
def test_cache_holds_the_keep_ratio_of_visual_tokens_per_group_and_layer(
    make_runner, make_video, mode, ratio
):
    first, _, _ = make_video(8, 0.5, seed=3)  # 4 grids
    second, _, _ = make_video(6, 0.5, seed=4)  # 3 grids
    runner = make_runner(kv_prune=mode, kv_keep_ratio=ratio, kv_group_grids=2)
    with runner.session() as s:
        logits, stats = s.prefill_turn("Where?", [ContextEvent.whole(first), ContextEvent.whole(second)])
        text = stats.tokens - stats.visual_tokens
        per_grid = first.grid_hw[0] * first.grid_hw[1]
        # groups of 2 grids: 4 + 3 grids -> groups of 2, 2, 2, 1 grids (grids of both events count)
        expected = sum(kept_count(g * per_grid, ratio) for g in (2, 2, 2, 1))
        assert s.cache.length == text + expected
        assert torch.isfinite(logits).all()


def test_window_scores_are_attention_mass():
    torch.manual_seed(0)
    q, k = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 10, 8)
    score = window_scores(q, k, scale=8**-0.5, pool_kernel=1)
    assert score.shape == (10,)
    torch.testing.assert_close(score.sum(), torch.tensor(4 * 3.0))


def test_grouped_topk_keeps_text_and_best_per_group():
    score = torch.tensor([0.0, 5.0, 1.0, 3.0, 0.0, 2.0, 9.0, 0.5])
    is_visual = torch.tensor([False, True, True, True, False, True, True, True])
    group = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    kept = grouped_topk_keep(score, is_visual, group, {0: 2, 1: 1})
    assert kept.tolist() == [0, 1, 3, 4, 6]


def test_snapkv_keeps_depend_on_the_question(make_runner, make_video):
    """Same video prefix, two questions: the visual rows SnapKV keeps differ (key norm's would not)."""
    event, _, _ = make_video(8, 0.5)
    n_keep = kept_count(len(event.tokens), 0.5)
    kept = {}
    for mode in ("snapkv", "keynorm"):
        runner = make_runner(kv_prune=mode, kv_keep_ratio=0.5, snapkv_window=4)
        for question in ("Where is the red box at the start?", "How many people leave at the end?"):
            with runner.session() as s:
                s.prefill_turn(question, [ContextEvent.whole(event)])
                first = _first_visual_row(s)
                kept[mode, question] = torch.stack([k[:, :, first : first + n_keep] for k in s.cache.k])
    q1, q2 = "Where is the red box at the start?", "How many people leave at the end?"
    assert not torch.equal(kept["snapkv", q1], kept["snapkv", q2])
    torch.testing.assert_close(kept["keynorm", q1], kept["keynorm", q2])
