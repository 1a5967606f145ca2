"""Decode, streaming, cancellation and session reuse on the tiny model."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import torch

from llm.prompt import ContextEvent

from .conftest import reference_inputs


def test_static_cache_decode_equals_stock_greedy_generate(make_runner, make_video, tiny_model):
    event, pixels, grid_thw = make_video(4, 0.25)  # both text rules agree: stock generate is consistent
    runner = make_runner(kv_prune="none")
    n_new = 12
    with runner.session() as s:
        logits, _ = s.prefill_turn("Describe the video.", [ContextEvent.whole(event)])
        layout = _layout(s)
        ours = list(s.generate(logits, n_new))
    ids, types = reference_inputs(layout, tiny_model.config.video_token_id)
    with torch.inference_mode():
        out = tiny_model.generate(
            input_ids=ids,
            pixel_values_videos=pixels,
            video_grid_thw=grid_thw,
            second_per_grid_ts=torch.tensor([0.5]),
            mm_token_type_ids=types,
            max_new_tokens=n_new,
            do_sample=False,
        )
    stock = out[0, ids.shape[1] :].tolist()
    assert ours == stock[: len(ours)]
    assert len(ours) == n_new or ours[-1] in runner.tokenizer.eos_ids


def _layout(session):
    from llm.positions import PositionTracker
    from llm.prompt import lay_out

    tracker = PositionTracker(session.tracker.tokens_per_second, session.tracker.text_resume)
    return lay_out(session.transcript, tracker, group_grids=10**6, seconds_per_grid=session.seconds_per_grid)


def test_follow_up_prefills_only_the_new_part_and_equals_a_fresh_prefill(make_runner, make_video):
    first, _, _ = make_video(6, 0.5, seed=1)
    second, _, _ = make_video(4, 0.5, seed=2)
    runner = make_runner(kv_prune="none")
    with runner.session() as live:
        answer = live.ask("What happens?", [ContextEvent.whole(first)], max_new_tokens=5)
        before = live.cache.length
        logits, stats = live.prefill_turn(
            "And then?", [ContextEvent.whole(first), ContextEvent.whole(second)]
        )
        assert stats.visual_tokens == len(second.tokens)  # the first event is not sent again
        assert live.cache.length == before + stats.tokens
        assert stats.tokens < live.cache.length
        with runner.session() as fresh:
            fresh_logits, _ = fresh.prefill(live.transcript)
            assert fresh.cache.length == live.cache.length
    assert answer.generated_tokens == 5
    torch.testing.assert_close(logits, fresh_logits, atol=1e-4, rtol=1e-4)


def test_follow_up_reuses_a_pruned_cache(make_runner, make_video):
    first, _, _ = make_video(6, 0.5, seed=1)
    runner = make_runner(kv_prune="keynorm", kv_keep_ratio=0.5)
    with runner.session() as live:
        a1 = live.ask("What happens?", [ContextEvent.whole(first)], max_new_tokens=3)
        kv_after_first = live.cache.length
        a2 = live.ask("Anything else?", [ContextEvent.whole(first)], max_new_tokens=3)
    assert a2.prefill_tokens < 30  # question and turn markers only
    assert kv_after_first == a1.kv_tokens + 2  # 2 of 3 answer tokens fed; the last is fed with the follow-up
    assert a2.kv_tokens == kv_after_first + a2.prefill_tokens
    assert a1.visual_tokens == a2.visual_tokens == len(first.tokens)


def test_cancel_stops_within_one_step(make_runner, make_video):
    event, _, _ = make_video(4, 0.5)
    runner = make_runner(kv_prune="none")
    cancel = threading.Event()
    seen = []

    def on_piece(piece):
        seen.append(piece)
        if len(seen) == 3:
            cancel.set()

    answer = runner.answer(
        "Go on.", [ContextEvent.whole(event)], max_new_tokens=200, cancel=cancel, on_piece=on_piece
    )
    assert answer.is_cancelled and answer.finish_reason == "cancelled"
    assert answer.generated_tokens == seen[-1].tokens == 3


def test_stream_yields_the_answer_text_and_cites_events_up_front(make_runner, make_video):
    event, _, _ = make_video(4, 0.5)
    runner = make_runner(kv_prune="keynorm")

    async def consume():
        stream = runner.stream(
            "What is there?", [ContextEvent(event, np.arange(10), relevance=0.7)], max_new_tokens=8
        )
        cited = list(stream.cited)
        pieces = [p.text async for p in stream]
        return cited, pieces, stream.answer

    cited, pieces, answer = asyncio.run(consume())
    assert [h.event_id for h in cited] == [event.event_id] and cited[0].score == 0.7
    assert "".join(pieces) == answer.text and answer.text
    assert answer.ttft_s is not None and answer.generated_tokens == 8


def test_async_cancel_ends_the_stream(make_runner, make_video):
    event, _, _ = make_video(4, 0.5)
    runner = make_runner(kv_prune="none")

    async def consume():
        stream = runner.stream("Go on.", [ContextEvent.whole(event)], max_new_tokens=500)
        n = 0
        async for _ in stream:
            n += 1
            if n == 2:
                stream.cancel()
        return n, stream.answer

    n, answer = asyncio.run(consume())
    assert answer.is_cancelled
    assert n <= answer.generated_tokens <= n + 1 < 500


def test_sessions_return_their_cache_to_the_pool(make_runner, make_video):
    runner = make_runner()
    s = runner.session()
    cache = s.cache
    s.close()
    s.close()
    again = runner.session()
    assert again.cache is cache and again.cache.length == 0


def test_pooled_cache_serves_every_entry_point_in_any_order(make_runner, make_video):
    """A cache made by one entry point (multiple choice, under inference mode) is reused by the
    others, from another thread too, without "inference tensor" errors and with the same answer."""
    event, _, _ = make_video(4, 0.5)
    runner = make_runner(kv_prune="none")
    context = [ContextEvent.whole(event)]
    first = runner.answer("What happens?", context, max_new_tokens=4).text
    runner.choose_option("Which?", ["a box", "a ball"], context)

    async def streamed():
        stream = runner.stream("What happens?", context, max_new_tokens=4)
        return "".join([p.text async for p in stream])

    assert runner.answer("What happens?", context, max_new_tokens=4).text == first
    assert asyncio.run(streamed()) == first
    with runner.session() as s:
        assert runner.ask(s, "What happens?", context, max_new_tokens=4).text == first
