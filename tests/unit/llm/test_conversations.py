"""api.conversations: a live client's questions share one session; held sessions are bounded; a
turn that would overflow the cache, a failed turn and a client going away all start afresh or give
the session back."""

from __future__ import annotations

import torch

from api.conversations import Conversations
from llm import ContextEvent


def turn(conversations, conversation, question, context, max_new_tokens=3, fail=False):
    """One model turn as Questions runs it; returns the answer (None for a failed turn)."""
    runner = conversations.runner
    with torch.inference_mode():
        session = conversations.session_for(conversation, question, context, max_new_tokens)
        try:
            if fail:
                raise RuntimeError("the turn broke")
            return runner.ask(session, question, context, max_new_tokens=max_new_tokens)
        except RuntimeError:
            return None
        finally:
            conversations.turn_done(conversation, session, is_failed=fail)


def test_turn_tokens_counts_what_prefill_turn_prefills(make_runner, make_video):
    first, _, _ = make_video(6, 0.5, seed=1)
    second, _, _ = make_video(4, 0.5, seed=2)
    runner = make_runner(kv_prune="none")
    with runner.session() as s:
        for question, context in (
            ("What happens?", [ContextEvent.whole(first)]),
            ("And then?", [ContextEvent.whole(first), ContextEvent.whole(second)]),
        ):
            expected = s.turn_tokens(question, context)
            _, stats = s.prefill_turn(question, context)
            assert stats.tokens == expected


def test_a_follow_up_in_a_conversation_prefills_only_what_is_new(make_runner, make_video):
    first, _, _ = make_video(6, 0.5, seed=1)
    second, _, _ = make_video(4, 0.5, seed=2)
    conversations = Conversations(make_runner(kv_prune="none"), max_held=2)
    talk = conversations.open()
    a1 = turn(conversations, talk, "What happens?", [ContextEvent.whole(first)])
    a2 = turn(conversations, talk, "And then?", [ContextEvent.whole(first), ContextEvent.whole(second)])
    assert a2.prefill_tokens < a1.prefill_tokens  # the first event is not sent again
    assert a2.visual_tokens == len(first.tokens) + len(second.tokens)
    assert a2.kv_tokens > a1.kv_tokens and conversations.held == 1
    talk.close()
    assert conversations.held == 0 and talk.session is None


def test_held_sessions_are_bounded_and_the_idle_one_starts_afresh(make_runner, make_video):
    event, _, _ = make_video(6, 0.5, seed=1)
    context = [ContextEvent.whole(event)]
    conversations = Conversations(make_runner(kv_prune="none"), max_held=1)
    a, b = conversations.open(), conversations.open()
    first_a = turn(conversations, a, "What happens?", context)
    turn(conversations, b, "What happens?", context)  # takes the only slot: a gives its session back
    assert conversations.held == 1 and a.session is None and b.session is not None
    again_a = turn(conversations, a, "Anything else?", context)
    assert again_a.prefill_tokens >= len(event.tokens)  # afresh: the event is prefilled again
    assert again_a.visual_tokens == first_a.visual_tokens


def test_a_turn_that_would_overflow_the_cache_starts_a_fresh_session(make_runner, make_video):
    event, _, _ = make_video(6, 0.5, seed=1)
    context = [ContextEvent.whole(event)]
    capacity, question = 256, "Tell me again."
    runner = make_runner(kv_prune="none", max_context_tokens=capacity)
    with runner.session() as probe:
        fresh_turn = probe.turn_tokens(question, context)
    room = capacity - fresh_turn - 1  # the longest answer a fresh session has room for
    conversations = Conversations(runner, max_held=2)
    talk = conversations.open()
    first = turn(conversations, talk, "What happens?", context, max_new_tokens=20)
    session = talk.session
    assert session.cache.length + session.turn_tokens(question, context) + room + 1 > capacity
    second = turn(conversations, talk, question, context, max_new_tokens=room)
    assert talk.session is not session  # started afresh instead of overflowing
    assert second.generated_tokens == room and first.generated_tokens == 20


def test_a_failed_turn_and_a_client_gone_mid_turn_give_the_session_back(make_runner, make_video):
    event, _, _ = make_video(4, 0.5, seed=1)
    context = [ContextEvent.whole(event)]
    conversations = Conversations(make_runner(kv_prune="none"), max_held=2)
    talk = conversations.open()
    assert turn(conversations, talk, "What happens?", context, fail=True) is None
    assert talk.session is None and conversations.held == 0
    with torch.inference_mode():
        session = conversations.session_for(talk, "What happens?", context, 3)
        talk.close()  # the client left while the model answers: the session stays until the turn ends
        assert talk.session is session
        conversations.runner.ask(session, "What happens?", context, max_new_tokens=3)
        conversations.turn_done(talk, session, is_failed=False)
    assert talk.session is None and conversations.held == 0


def test_with_no_held_sessions_every_question_starts_afresh(make_runner, make_video):
    event, _, _ = make_video(4, 0.5, seed=1)
    context = [ContextEvent.whole(event)]
    conversations = Conversations(make_runner(kv_prune="none"), max_held=0)
    talk = conversations.open()
    a1 = turn(conversations, talk, "What happens?", context)
    a2 = turn(conversations, talk, "What happens?", context)
    assert a1.prefill_tokens == a2.prefill_tokens and conversations.held == 0
