"""Search and ask: the question is embedded by the retrieval encoder, the memory bank finds events
(stream and time filters), and for `ask` the compressor picks tokens under the budget and the LLM
streams the answer.

The LLM runs one turn at a time. Questions wait for it in a fair lock: owners (a WebSocket
connection, or an API key over REST) take turns round-robin, so one client with many questions does
not make the others wait behind all of them. The queue depth is a metric; past
`max_pending_answers` new questions get 503. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from compressor import select_tokens
from llm import Answer, AnswerPiece, AnswerStream, Runner, context_from_selection
from memory import Hit

from .config import ApiSettings
from .conversations import Conversation, Conversations
from .errors import NotFoundError, UnavailableError
from .fairness import FairLock
from .metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scope:
    streams: list[str] | None = None
    since: float | None = None
    until: float | None = None


class TextContext(Protocol):
    """What the text channels give an ask (api.text_search.TextStore): the scope's slide text and
    transcript for the prompt, and audio-guided weights for the token budget."""

    def prompt_text(
        self, question: str, stream_ids: Sequence[str], since: float | None, until: float | None
    ) -> str: ...

    def speech_weights(self, events: Sequence[Any]) -> list[float] | None: ...


class TextSearch(Protocol):
    """Hybrid search over OCR/speech text fused with the visual hits (memory.hybrid), when wired."""

    def __call__(
        self, query: str, visual_hits: Sequence[Hit], scope: Scope, k: int, channels: Sequence[str] | None
    ) -> list[Hit]: ...


@dataclass(frozen=True, slots=True)
class Done:
    """The last item of an answer stream."""

    answer: Answer
    cited: list[Hit]


def text_for_ask(
    text: TextContext | None, question: str, events: Sequence[Any], hits: Sequence[Hit], scope: Scope
) -> tuple[list[float] | None, str]:
    """What the text channels add to an ask (the API's and `vidsight ask`): audio-guided weights for
    the retrieved events' token budget (None: nothing to guide by), and the user turn's text: the
    scope's slide text and transcript with their times, then the question."""
    if text is None:
        return None, question
    weights = text.speech_weights(events)
    streams = scope.streams or sorted({h.stream_id for h in hits})
    evidence = text.prompt_text(question, streams, scope.since, scope.until)
    if not evidence:
        return weights, question
    return (
        weights,
        f"Slide text and speech in this footage, with their times:\n{evidence}\n\nQuestion: {question}",
    )


def event_path(event_id: str) -> str:
    return "/v1/events/" + urllib.parse.quote(event_id, safe=":")


def result_of(hit: Hit, clock: str) -> dict[str, Any]:
    """A search result as the API shows it (see schemas.SearchResult)."""
    is_wall = clock == "wall" and hit.start_wall_s is not None and hit.end_wall_s is not None
    is_text_only = "@" in hit.event_id  # memory.hybrid names a range of text outside any event so
    return {
        "event_id": hit.event_id,
        "stream_id": hit.stream_id,
        "start_s": hit.start_wall_s if is_wall else hit.start_pts_s,
        "end_s": hit.end_wall_s if is_wall else hit.end_pts_s,
        "start_pts_s": hit.start_pts_s,
        "end_pts_s": hit.end_pts_s,
        "start_wall_s": hit.start_wall_s,
        "end_wall_s": hit.end_wall_s,
        "score": round(float(hit.score), 6),
        "channel": hit.channel,
        "snippet": hit.snippet,
        "thumbnail_url": None
        if is_text_only or not hit.thumbnail_path
        else event_path(hit.event_id) + "/thumbnail",
        "clip_url": None if is_text_only else event_path(hit.event_id) + "/clip",
    }


class Questions:
    def __init__(
        self,
        settings: ApiSettings,
        *,
        memory: Any,
        embed_texts: Callable[[Sequence[str]], np.ndarray],
        runner: Runner,
        compressor_settings: Any,
        ask_events: int,
        metrics: Metrics,
        text_search: TextSearch | None = None,
        text_context: TextContext | None = None,
    ) -> None:
        self.settings = settings
        self.memory = memory
        self.embed_texts = embed_texts
        self.runner = runner
        self.selection = compressor_settings.selection
        self.ask_events = ask_events
        self.metrics = metrics
        self.text_search = text_search
        self.text_context = text_context
        self._model = FairLock()
        # Live clients' follow-ups reuse their session's pruned KV (api.conversations).
        self.conversations = Conversations(runner, settings.ws_conversation_sessions)
        self.waiting = 0  # questions queued for the model
        self.answering = 0

    def clock_of(self, stream_id: str) -> str:
        info = self.memory.streams().get(stream_id)
        return "pts" if info is None else str(info.clock)

    # -- search ----------------------------------------------------------------------------------

    def search(self, query: str, scope: Scope, k: int, channels: Sequence[str] | None = None) -> list[Hit]:
        started = time.perf_counter()
        hits = self._visual(self.embed_texts([query])[0], scope, k)
        if self.text_search is not None:
            hits = self.text_search(query, hits, scope, k, channels)
        elif channels is not None and "visual" not in channels:
            hits = []
        self.metrics.query_latency.labels("search").observe(time.perf_counter() - started)
        return hits

    def _visual(self, query_embedding: np.ndarray, scope: Scope, k: int) -> list[Hit]:
        known = self.memory.streams()
        for stream_id in scope.streams or []:
            if stream_id not in known:
                raise NotFoundError(
                    f"unknown stream {stream_id!r}; known: {', '.join(sorted(known)[:20]) or 'none'}"
                )
        if self.memory.events == 0:
            return []  # an empty bank has no dimension yet to check the query against
        return list(self.memory.search(query_embedding, k, scope.streams, scope.since, scope.until))

    # -- ask -------------------------------------------------------------------------------------

    def _context(self, question: str, scope: Scope, k: int) -> tuple[list[Any], list[Hit], str]:
        """Retrieve, load the events' tokens and select under the budget (a worker thread runs
        this). Returns the context, the cited hits and the user turn's text (the question, after
        the scope's slide text and transcript where there are any)."""
        query = self.embed_texts([question])[0]
        hits = self._visual(query, scope, k)
        events = [(self.memory.get_event(h.event_id), h.score) for h in hits]
        is_live = bool(events) and all(e.start_wall_s is not None for e, _ in events)
        weights, prompt = text_for_ask(self.text_context, question, [e for e, _ in events], hits, scope)
        selection = select_tokens(
            query,
            events,
            self.selection.budget_tokens,
            settings=self.selection,
            is_live=is_live,
            event_weights=weights,
        )
        chosen = {se.event.event_id for se in selection.events}
        return context_from_selection(selection), [h for h in hits if h.event_id in chosen], prompt

    async def answer(
        self,
        question: str,
        scope: Scope,
        *,
        k: int | None = None,
        max_new_tokens: int | None = None,
        owner: str = "",
        conversation: Conversation | None = None,
    ) -> AsyncIterator[AnswerPiece | Done]:
        """Stream the answer: AnswerPiece items, then one Done. Cancelling the consumer stops the
        model within one decode step. `owner` names whose turn this is in the fair queue; with a
        `conversation` the turn continues its session (only what it lacks is prefilled)."""
        started = time.perf_counter()
        if self.waiting >= self.settings.max_pending_answers:
            raise UnavailableError(
                f"{self.waiting} questions are waiting for the model "
                f"(limit {self.settings.max_pending_answers}); try again shortly"
            )
        context, cited, prompt = await asyncio.to_thread(self._context, question, scope, k or self.ask_events)
        self.waiting += 1
        try:
            await asyncio.wait_for(self._model.acquire(owner), self.settings.ask_timeout_s)
        except TimeoutError:
            raise UnavailableError(
                f"the model stayed busy for {self.settings.ask_timeout_s} s; try again shortly"
            ) from None
        finally:
            self.waiting -= 1
        self.answering += 1
        try:
            limit = min(max_new_tokens or self.settings.ask_max_new_tokens, self.settings.max_answer_tokens)
            stream = self._stream(prompt, context, limit, started, conversation)
            try:
                is_first = True
                async for piece in stream:
                    if is_first:
                        self.metrics.query_latency.labels("ask_first_token").observe(
                            time.perf_counter() - started
                        )
                        is_first = False
                    yield piece
            finally:
                await stream.aclose()
            assert stream.answer is not None
            self.metrics.query_latency.labels("ask").observe(time.perf_counter() - started)
        finally:
            self.answering -= 1
            self._model.release()
        yield Done(stream.answer, cited)

    def _stream(
        self,
        question: str,
        context: list[Any],
        limit: int,
        started_s: float,
        conversation: Conversation | None = None,
    ) -> AnswerStream:
        """runner.stream, with the turn under torch.inference_mode: the runner pools its KV caches,
        and one made inside inference mode (Runner.choose_option, which the alert verifier uses)
        cannot be written outside it."""

        def ask(session: Any, cancel: threading.Event, on_piece: Callable[[AnswerPiece], None]) -> Answer:
            return self.runner.ask(
                session,
                question,
                context,
                max_new_tokens=limit,
                started_s=started_s,
                cancel=cancel,
                on_piece=on_piece,
            )

        def run(cancel: threading.Event, on_piece: Callable[[AnswerPiece], None]) -> Answer:
            import torch

            with torch.inference_mode():
                if conversation is None:
                    with self.runner.session() as session:
                        return ask(session, cancel, on_piece)
                session = self.conversations.session_for(conversation, question, context, limit)
                is_failed = True
                try:
                    answer = ask(session, cancel, on_piece)
                    is_failed = False
                    return answer
                finally:
                    self.conversations.turn_done(conversation, session, is_failed=is_failed)

        return AnswerStream(run, cited_from=context)

    async def ask(
        self,
        question: str,
        scope: Scope,
        *,
        k: int | None = None,
        max_new_tokens: int | None = None,
        owner: str = "",
    ) -> Done:
        done = None
        async for item in self.answer(question, scope, k=k, max_new_tokens=max_new_tokens, owner=owner):
            if isinstance(item, Done):
                done = item
        assert done is not None
        return done
