"""Prefill by piecewise CUDA graph replay equals eager prefill: logits, cache contents, key-norm pruning;
graphs captured once per bucket serve later turns at other cache lengths."""

from __future__ import annotations

import pytest
import torch

from llm import ContextEvent, LLMSettings, Runner, load_model

from ._events import grid_event

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

BUCKETS = {"prefill_bucket_tokens": 32, "prefill_graph_max_tokens": 256}


def _turns(model, mode: str, **settings):
    """A question over one event, a follow-up over a new one, then the same text-only follow-up twice
    (same bucket, another cache length). Returns logits per turn, live K/V, prefill stats, graph counts."""
    runner = Runner(
        LLMSettings(device="cuda", prefill_graphs=mode, max_context_tokens=2048, **BUCKETS, **settings),
        model=model,
    )
    d = model.config.text_config.hidden_size
    first, second = grid_event(d, event_id="a", t0=0, grids=4), grid_event(d, event_id="b", t0=10, grids=4)
    turns = [("What happens?", [first]), ("And then?", [second]), ("Why?", []), ("Why?", [])]
    logits, answers = [], []
    with runner.session() as s:
        for question, events in turns:
            lg, stats = s.prefill_turn(question, [ContextEvent.whole(e) for e in events])
            logits.append(lg.float().cpu())
            answers.append(stats)
            list(s.generate(lg, 3))
        n = s.cache.length
        kv = [t[:, :, :n].float().cpu() for t in s.cache.k + s.cache.v]
    return logits, kv, answers, runner.prefill_graph_counts()


@pytest.mark.parametrize("mode", ["inductor", "cudagraph"])
@pytest.mark.parametrize("prune", ["keynorm", "none"])
def test_graph_prefill_equals_eager_prefill_float32(prune, mode):
    model = load_model(LLMSettings(device="cuda", dtype="float32"))
    eager = _turns(model, "none", dtype="float32", kv_prune=prune, kv_group_grids=2)
    graph = _turns(model, mode, dtype="float32", kv_prune=prune, kv_group_grids=2)
    stats, counts = graph[2], graph[3]
    assert all(s.graphed_groups == s.groups for s in stats)  # no silent fallback
    assert counts["compiled"] == (mode == "inductor")
    assert counts["chunks"] == sum(s.groups for s in stats)
    assert 0 < counts["captured_buckets"] < counts["chunks"]  # a bucket's graphs served several turns
    assert len(graph[1][0][0, 0]) == len(eager[1][0][0, 0])  # same cache length
    for mine, theirs in zip(graph[0] + graph[1], eager[0] + eager[1], strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mode", ["inductor", "cudagraph"])
def test_graph_prefill_equals_eager_prefill_bf16(mode):
    """bf16 logits agree within bf16 tolerance. Unpruned: under key-norm pruning a last-bit difference in
    a key may swap two near-equal norms at the keep boundary, so only the kept counts are compared."""
    model = load_model(LLMSettings(device="cuda", dtype="bfloat16"))
    eager = _turns(model, "none", kv_prune="none")
    graph = _turns(model, mode, kv_prune="none")
    assert all(s.graphed_groups == s.groups for s in graph[2])
    for mine, theirs in zip(graph[0], eager[0], strict=True):
        torch.testing.assert_close(mine, theirs, atol=5e-2, rtol=5e-2)
    pruned = [_turns(model, m, kv_prune="keynorm", kv_group_grids=2) for m in ("none", mode)]
    assert len(pruned[0][1][0][0, 0]) == len(pruned[1][1][0][0, 0])
    assert all(torch.isfinite(lg).all() for lg in pruned[1][0])


def test_warmup_captures_every_bucket_and_turns_capture_nothing_more():
    model = load_model(LLMSettings(device="cuda", dtype="bfloat16"))
    runner = Runner(LLMSettings(device="cuda", **BUCKETS), model=model)
    runner.warmup()
    assert runner.prefill_graph_counts()["captured_buckets"] == 256 // 32
    event = grid_event(model.config.text_config.hidden_size, event_id="a", t0=0, grids=4)
    answer = runner.answer("Where?", [ContextEvent.whole(event)], max_new_tokens=4)
    assert answer.graphed_groups == answer.prefill_groups == 1 and answer.generated_tokens == 4
    assert runner.prefill_graph_counts()["captured_buckets"] == 256 // 32


@pytest.mark.parametrize(
    ("heads", "kv_heads", "past", "new"), [(28, 4, 1454, 588), (4, 2, 37, 5), (8, 8, 300, 129)]
)
def test_grouped_attention_over_the_cache_equals_repeated_heads(heads, kv_heads, past, new):
    """New rows over the cache with grouped K/V passed as they are (flash, bottom-right causal) equal
    the same attention with K/V repeated to every query head, in float32 math."""
    from torch.nn.attention.bias import causal_lower_right

    from llm.engine import TextEngine

    torch.manual_seed(0)
    engine = TextEngine.__new__(TextEngine)  # only the attention's own fields
    torch.nn.Module.__init__(engine)
    engine.n_heads, engine.n_kv_heads, engine.head_dim, engine.scale = heads, kv_heads, 128, 128**-0.5
    engine.flash = None
    q = torch.randn(1, heads, new, 128, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, kv_heads, past + new, 128, device="cuda", dtype=torch.bfloat16) for _ in "kv")
    mine = engine._attend(q, k, v, past)
    rep = heads // kv_heads
    expected = torch.nn.functional.scaled_dot_product_attention(
        q.float(),
        k.float().repeat_interleave(rep, 1),
        v.float().repeat_interleave(rep, 1),
        attn_mask=causal_lower_right(new, past + new),
        scale=engine.scale,
    )
    torch.testing.assert_close(mine.float(), expected, atol=2e-2, rtol=2e-2)
