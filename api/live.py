"""The /v1/live WebSocket: questions with streamed answers, and pushes (alerts, new events, stream health).

Each client has a bounded outgoing queue drained by its own sender task; nothing that produces
messages (the model, the alert engine, stream loops) ever waits on a client. Policy when a client
falls behind:
- push messages that a later one supersedes (`event`, `stream_health`) are dropped for that client
  once its queue is half full (counted in vidsight_ws_dropped_messages);
- messages that must arrive (`token`, `answer_done`, `alert`, `error`) are queued; when the queue is
  full, or one send takes longer than `ws_send_timeout_s`, the client is closed with code 1013
  ("try again later") and its questions are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from llm import AnswerPiece

from .config import ApiSettings
from .conversations import Conversation
from .errors import ApiError
from .metrics import Metrics
from .questions import Done, Questions, Scope, result_of
from .schemas import LiveAsk, LiveCancel, LiveClientMessage, LiveSubscribe

log = logging.getLogger(__name__)
TOPICS = ("events", "alerts", "stream_health")
_DROPPABLE = {"event", "stream_health"}
_CLIENT_MESSAGE: TypeAdapter[Any] = TypeAdapter(LiveClientMessage)
_MAX_MESSAGE_CHARS = 64 * 1024
CLOSE_TOO_SLOW = 1013
CLOSE_POLICY = 1008


class LiveClient:
    def __init__(
        self,
        ws: WebSocket,
        settings: ApiSettings,
        metrics: Metrics,
        charge: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.ws = ws
        self.charge = charge  # the key's rate limit: None if a question may go, else seconds to wait
        self.settings = settings
        self.metrics = metrics
        self.topics: set[str] = set(TOPICS)
        self.asks: dict[str, asyncio.Task[None]] = {}
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=settings.ws_queue_messages)
        self.failed = asyncio.Event()  # set when the client fell too far behind
        self.reason = ""
        self.conversation: Conversation | None = None  # its questions' model session, once it asks

    def push(self, message: dict[str, Any]) -> bool:
        """Queue a message without waiting; False if it was dropped."""
        if self.failed.is_set():
            return False
        kind = str(message.get("type"))
        if kind in _DROPPABLE and self.queue.qsize() >= self.queue.maxsize // 2:
            self.metrics.ws_dropped.labels(kind).inc()
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self._fail(f"client fell {self.queue.maxsize} messages behind")
            return False
        return True

    def _fail(self, reason: str) -> None:
        if not self.failed.is_set():
            self.reason = reason
            self.metrics.ws_closed_slow.inc()
            self.failed.set()

    async def send_loop(self) -> None:
        timeout_s = self.settings.ws_send_timeout_s
        while True:
            message = await self.queue.get()
            try:
                await asyncio.wait_for(self.ws.send_text(json.dumps(message, default=str)), timeout_s)
            except TimeoutError:
                self._fail(f"one message took longer than {timeout_s} s to send")
                return

    async def receive_loop(self, questions: Questions) -> None:
        while True:
            text = await self.ws.receive_text()
            if len(text) > _MAX_MESSAGE_CHARS:
                self.push(
                    _error(None, "bad_request", f"messages are at most {_MAX_MESSAGE_CHARS} characters")
                )
                continue
            try:
                message = _CLIENT_MESSAGE.validate_python(json.loads(text))
            except (json.JSONDecodeError, ValidationError) as exc:
                self.push(_error(None, "bad_request", _describe(exc)))
                continue
            self._dispatch(message, questions)

    def _dispatch(self, message: Any, questions: Questions) -> None:
        if isinstance(message, LiveSubscribe):
            self.topics = set(message.topics)
        elif isinstance(message, LiveCancel):
            task = self.asks.get(message.id)
            if task is None:
                self.push(_error(message.id, "not_found", f"no open question with id {message.id!r}"))
            else:
                task.cancel()
        elif isinstance(message, LiveAsk):
            if message.id in self.asks:
                self.push(_error(message.id, "conflict", f"question id {message.id!r} is already open"))
            elif len(self.asks) >= self.settings.ws_max_inflight:
                limit = self.settings.ws_max_inflight
                self.push(_error(message.id, "rate_limited", f"at most {limit} open questions per client"))
            elif (wait_s := self.charge()) is not None:
                self.push(
                    _error(
                        message.id, "rate_limited", f"API key over its rate limit; retry in {wait_s:.2f} s"
                    )
                )
            else:
                task = asyncio.create_task(self._answer(message, questions))
                self.asks[message.id] = task
                task.add_done_callback(functools.partial(self._forget, message.id))

    def _forget(self, ask_id: str, _task: asyncio.Task[None]) -> None:
        self.asks.pop(ask_id, None)

    async def _answer(self, ask: LiveAsk, questions: Questions) -> None:
        scope = Scope(ask.scope.streams, ask.scope.since, ask.scope.until)
        text: list[str] = []
        if self.conversation is None:
            self.conversation = questions.conversations.open()
        try:
            async for item in questions.answer(
                ask.question,
                scope,
                k=ask.scope.k,
                max_new_tokens=ask.max_new_tokens,
                owner=f"ws:{id(self)}",
                conversation=self.conversation,
            ):
                if isinstance(item, AnswerPiece):
                    text.append(item.text)
                    self.push({"type": "token", "id": ask.id, "text": item.text, "tokens": item.tokens})
                elif isinstance(item, Done):
                    self.push(done_message(ask.id, item, questions.clock_of))
        except asyncio.CancelledError:
            self.push(
                {
                    "type": "answer_done",
                    "id": ask.id,
                    "answer": "".join(text),
                    "cited": [],
                    "finish_reason": "cancelled",
                }
            )
        except ApiError as exc:
            self.push(_error(ask.id, exc.code, exc.message))
        except Exception as exc:  # the client gets a clear message; the log keeps the details
            log.warning("live answer %s failed: %s", ask.id, exc, exc_info=True)
            self.push(_error(ask.id, "internal", "the answer failed; see the server log"))

    def cancel_all(self) -> None:
        """The client is going away: stop its answers and give its model session back."""
        for task in list(self.asks.values()):
            task.cancel()
        if self.conversation is not None:
            self.conversation.close()


def done_message(ask_id: str, done: Done, clock_of: Callable[[str], str]) -> dict[str, Any]:
    a = done.answer
    return {
        "type": "answer_done",
        "id": ask_id,
        "answer": a.text,
        "cited": [result_of(h, clock_of(h.stream_id)) for h in done.cited],
        "finish_reason": a.finish_reason,
        "ttft_ms": None if a.ttft_s is None else round(a.ttft_s * 1000, 2),
        "generated_tokens": a.generated_tokens,
        "visual_tokens": a.visual_tokens,
        "prefill_tokens": a.prefill_tokens,
        "kv_tokens": a.kv_tokens,
    }


def _error(ask_id: str | None, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "id": ask_id, "code": code, "message": message}


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid message at {where or 'top level'}: {first.get('msg')}"
    return f"not JSON: {exc}"


class LiveHub:
    """The connected clients, and fan-out of pushes to them."""

    def __init__(self, settings: ApiSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clients: set[LiveClient] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def broadcast(self, topic: str, message: dict[str, Any]) -> None:
        """Call on the event loop. Never waits on a client."""
        for client in list(self.clients):
            if topic in client.topics:
                client.push(message)

    def broadcast_threadsafe(self, topic: str, message: dict[str, Any]) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.broadcast, topic, message)

    def queued(self) -> int:
        return sum(c.queue.qsize() for c in list(self.clients))

    async def serve(
        self, ws: WebSocket, questions: Questions, charge: Callable[[], float | None] = lambda: None
    ) -> None:
        """Run one accepted connection until it closes, fails or falls behind. `charge` takes one
        request from the client's key's rate limit for each question."""
        if len(self.clients) >= self.settings.max_ws_clients:
            await ws.close(CLOSE_TOO_SLOW, f"server has {self.settings.max_ws_clients} clients; try later")
            return
        client = LiveClient(ws, self.settings, self.metrics, charge)
        self.clients.add(client)
        self.metrics.ws_clients.set(len(self.clients))
        tasks = [
            asyncio.create_task(client.send_loop()),
            asyncio.create_task(client.receive_loop(questions)),
            asyncio.create_task(client.failed.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.clients.discard(client)
            self.metrics.ws_clients.set(len(self.clients))
            client.cancel_all()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if client.failed.is_set():
                # Its socket is backed up, so the close frame may never leave: don't wait on it for
                # long (the server aborts the connection after its own close timeout).
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(CLOSE_TOO_SLOW, client.reason[:120]), 2.0)
            elif tasks[1].done() and not isinstance(tasks[1].exception(), WebSocketDisconnect):
                with contextlib.suppress(Exception):
                    await ws.close()


async def relay_alerts(subscription: Any, hub: LiveHub) -> None:
    """Alert engine messages (new / update / end / dropped) to /v1/live clients as `alert`."""
    async with subscription:
        async for message in subscription:
            firing = message.after or message.before
            hub.broadcast(
                "alerts",
                {
                    "type": "alert",
                    "kind": message.type,
                    "alert_id": message.alert_id,
                    "alert_name": message.alert_name,
                    "dropped": message.dropped,
                    "firing": None if firing is None else firing.model_dump(mode="json"),
                },
            )
