"""Live conversations: a WebSocket client's questions share one model session.

A follow-up then prefills only the events its retrieval found that are not already in the session,
and the question; everything before stays in the session's pruned KV cache (`llm.Session`). Each
held session pins a KV cache (about 1.9 GB for a 7B model at 32K tokens), so at most
`max_held` conversations keep one: the one idle longest gives its session back when another needs
one, and its next question starts afresh. A session that would overflow its cache with the next
turn is also started afresh.

Sessions are taken and given back only by the model's turn (one at a time, `Questions`' fair
lock), so a session is never evicted while it answers; a conversation closed meanwhile (its client
went away) gives its session back when that turn ends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from llm import Runner, Session


class Conversation:
    """One client's thread of questions. `close()` when the client goes away."""

    def __init__(self, registry: Conversations) -> None:
        self._registry = registry
        self.session: Session | None = None
        self.is_answering = False
        self.is_closed = False

    def close(self) -> None:
        self._registry.close(self)


class Conversations:
    def __init__(self, runner: Runner, max_held: int) -> None:
        self.runner = runner
        self.max_held = max_held
        self._held: OrderedDict[int, Conversation] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def open(self) -> Conversation:
        return Conversation(self)

    def session_for(
        self, conversation: Conversation, question: str, context: Sequence[Any], max_new_tokens: int
    ) -> Session:
        """The session this turn runs in (call in the model's turn, under inference mode): the
        conversation's own if it is held and the turn fits its cache, else a fresh one."""
        with self._lock:
            session = conversation.session
            if session is not None:
                need = session.turn_tokens(question, context) + max_new_tokens + 1
                if session.cache.length + need > session.cache.capacity:
                    self._release(conversation)
            if conversation.session is None and self.max_held > 0:
                conversation.session = self.runner.session()
            conversation.is_answering = True
            if conversation.session is None:  # holding none: a session for this turn alone
                return self.runner.session()
            self._held[id(conversation)] = conversation
            self._held.move_to_end(id(conversation))
            while len(self._held) > self.max_held:
                idle = [c for c in self._held.values() if c is not conversation and not c.is_answering]
                if not idle:
                    break
                self._release(idle[0])
            return conversation.session

    def turn_done(self, conversation: Conversation, session: Session, *, is_failed: bool) -> None:
        """After the turn: a session held for no one, or one a failed turn may have left half
        written, goes back to the runner."""
        with self._lock:
            conversation.is_answering = False
            if session is not conversation.session:
                session.close()
                return
            if is_failed or conversation.is_closed:
                self._release(conversation)

    def close(self, conversation: Conversation) -> None:
        with self._lock:
            conversation.is_closed = True
            if not conversation.is_answering:
                self._release(conversation)

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def _release(self, conversation: Conversation) -> None:
        self._held.pop(id(conversation), None)
        session, conversation.session = conversation.session, None
        if session is not None:
            session.close()
