"""The bucketed prefill (the pieces CUDA graphs replay, with attention in between), run without graphs on
CPU in float32: padding a chunk to its bucket changes neither the logits nor the cache."""

from __future__ import annotations

import pytest
import torch

from llm.prompt import ContextEvent
from llm.pruning import keynorm_keep, keynorm_order

BUCKETS = {"prefill_bucket_tokens": 16}


def test_keynorm_order_puts_first_the_rows_keynorm_keep_keeps():
    torch.manual_seed(0)
    q, real = 24, 19
    keys = torch.randn(1, 2, q, 8)
    is_visual = torch.rand(real) < 0.7
    kinds = torch.full((q,), 2)
    kinds[:real] = is_visual.long()
    n_text, n_keep = int((~is_visual).sum()), 6
    order = keynorm_order(keys, kinds, torch.tensor([n_text + n_keep]))
    expected = keynorm_keep(keys[:, :, :real], is_visual, n_text, n_keep)
    assert order[: n_text + n_keep].tolist() == expected.tolist()
    assert sorted(order.tolist()) == list(range(q))  # a permutation: padding and dropped rows follow
    rest = order[n_text + n_keep :].tolist()
    assert rest == sorted(rest)


def test_keynorm_order_ranks_equal_norms_by_row():
    keys = torch.ones(1, 1, 6, 4)  # every visual row has the same norm
    keys[0, 0, 4] = 3.0  # ... but row 4, the largest
    kinds = torch.tensor([0, 1, 1, 1, 1, 2])
    order = keynorm_order(keys, kinds, torch.tensor([3]))  # the text row and two visual rows
    assert order.tolist() == [0, 1, 2, 3, 4, 5]


def _two_turns(runner, first, second):
    """A question over `first`, a short answer, a follow-up over `second`: (follow-up logits, its answer
    tokens, per-layer live K and V, stats of both turns)."""
    with runner.session() as s:
        a1 = s.ask("What happens?", [ContextEvent.whole(first)], max_new_tokens=3)
        logits, stats = s.prefill_turn("And then?", [ContextEvent.whole(first), ContextEvent.whole(second)])
        tokens = list(s.generate(logits, 4))
        n = s.cache.length
        k = [t[:, :, :n].clone() for t in s.cache.k]
        v = [t[:, :, :n].clone() for t in s.cache.v]
    return logits, tokens, k, v, (a1, stats)


@pytest.mark.parametrize("prune", ["none", "keynorm"])
def test_bucketed_prefill_equals_unpadded_prefill(make_runner, make_video, prune):
    first, _, _ = make_video(8, 0.5, seed=1)  # 4 grids of 6 tokens
    second, _, _ = make_video(4, 0.5, seed=2, stream_id="cam2")
    common = {"kv_prune": prune, "kv_keep_ratio": 0.5, "kv_group_grids": 2}
    eager = _two_turns(make_runner(prefill_graphs="none", **common), first, second)
    padded = _two_turns(make_runner(prefill_graphs="bucketed", **common, **BUCKETS), first, second)
    a1, follow = padded[4]
    assert a1.graphed_groups == a1.prefill_groups > 1 and follow.graphed_groups == follow.groups
    assert a1.prefill_tokens % 16 != 0 or follow.tokens % 16 != 0  # some chunk was really padded
    torch.testing.assert_close(padded[0], eager[0], atol=1e-5, rtol=1e-5)
    assert padded[1] == eager[1]
    assert len(padded[2][0][0, 0]) == len(eager[2][0][0, 0])  # same cache length
    for mine, theirs in zip(padded[2] + padded[3], eager[2] + eager[3], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)


def test_long_groups_and_the_snapkv_window_take_the_eager_path(make_runner, make_video):
    event, _, _ = make_video(8, 0.5, seed=3)
    long_groups = make_runner(prefill_graphs="bucketed", prefill_graph_max_tokens=16, kv_group_grids=1000)
    answer = long_groups.answer("Where?", [ContextEvent.whole(event)], max_new_tokens=1)
    assert answer.prefill_groups == 1 and answer.graphed_groups == 0
    snapkv = make_runner(prefill_graphs="bucketed", kv_prune="snapkv", kv_group_grids=2, **BUCKETS)
    answer = snapkv.answer("Where?", [ContextEvent.whole(event)], max_new_tokens=1)
    assert answer.graphed_groups == answer.prefill_groups - 1  # all but the last, whose queries prune


def test_padding_never_reaches_the_cache(make_runner, make_video):
    """A turn that fills the cache to its last slot still takes the bucketed path: padded rows are
    neither written nor attended."""
    event, _, _ = make_video(4, 0.5, seed=4)
    probe = make_runner(prefill_graphs="none", kv_prune="none")
    prompt_tokens = probe.answer("Where?", [ContextEvent.whole(event)], max_new_tokens=1).prefill_tokens
    capacity = max(64, prompt_tokens)
    runner = make_runner(
        prefill_graphs="bucketed", kv_prune="none", max_context_tokens=capacity, prefill_bucket_tokens=256
    )
    with runner.session() as s, torch.inference_mode():  # the pooled cache is an inference tensor
        s.cache.k[0].fill_(7.0)
        logits, stats = s.prefill_turn("Where?", [ContextEvent.whole(event)])
        assert stats.graphed_groups == 1 and torch.isfinite(logits).all()
        assert (s.cache.k[0][:, :, s.cache.length :] == 7.0).all()  # no padded row written past the turn
