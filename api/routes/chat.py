"""OpenAI-compatible `POST /v1/chat/completions` (and `GET /v1/models`).

The last user message is the question; the footage comes from the extension field `video`
({streams, since, until, k}). With `stream: true` the answer comes as `chat.completion.chunk`
Server-Sent Events ending in `data: [DONE]`; the last chunk carries `video.cited`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter

from llm import AnswerPiece

from ..deps import ReadKey, ServiceDep
from ..questions import Done, Scope, result_of
from ..schemas import ChatChoice, ChatChoiceMessage, ChatRequest, ChatResponse, ModelCard, ModelList, Usage
from ..sse import sse_response

router = APIRouter(prefix="/v1", tags=["openai"])
_FINISH = {"eos": "stop", "length": "length", "cancelled": "stop"}


@router.get("/models", response_model=ModelList, summary="The model that answers (OpenAI shape)")
def models(service: ServiceDep, _key: ReadKey) -> ModelList:
    created = int(service.started_s or time.time())
    return ModelList(data=[ModelCard(id=service.models["llm"], created=created, owned_by="vidsight")])


@router.post(
    "/chat/completions",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE chunks when stream=true"}
    },
    summary="OpenAI-compatible chat over the footage (scope in the `video` field)",
)
async def chat_completions(body: ChatRequest, service: ServiceDep, key: ReadKey) -> Any:
    question = next(m.text() for m in reversed(body.messages) if m.role == "user" and m.text().strip())
    video = body.video
    scope = Scope(video.streams, video.since, video.until) if video else Scope()
    limit = body.max_completion_tokens or body.max_tokens
    answer = service.questions.answer(
        question, scope, k=video.k if video else None, max_new_tokens=limit, owner=f"key:{key.key_id}"
    )
    first = await anext(answer)  # scope errors become a 4xx before any byte is sent
    completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    model = service.models["llm"]
    if body.stream:
        return sse_response(_chunks(first, answer, completion_id, created, model, service))
    done = first if isinstance(first, Done) else None
    async for item in answer:
        if isinstance(item, Done):
            done = item
    assert done is not None
    a = done.answer
    return ChatResponse(
        id=completion_id,
        created=created,
        model=model,
        choices=[
            ChatChoice(
                index=0,
                message=ChatChoiceMessage(content=a.text),
                finish_reason=_FINISH.get(a.finish_reason, "stop"),
            )
        ],
        usage=Usage(
            prompt_tokens=a.prefill_tokens,
            completion_tokens=a.generated_tokens,
            total_tokens=a.prefill_tokens + a.generated_tokens,
        ),
        video={"cited": _cited(done, service)},
    )


def _cited(done: Done, service: Any) -> list[dict[str, Any]]:
    return [result_of(h, service.questions.clock_of(h.stream_id)) for h in done.cited]


async def _chunks(
    first: AnswerPiece | Done,
    rest: AsyncIterator[AnswerPiece | Done],
    cid: str,
    created: int,
    model: str,
    service: Any,
) -> AsyncIterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }

    yield chunk({"role": "assistant", "content": ""}, None)
    item = first
    while True:
        if isinstance(item, AnswerPiece):
            yield chunk({"content": item.text}, None)
        else:
            a = item.answer
            usage = {
                "prompt_tokens": a.prefill_tokens,
                "completion_tokens": a.generated_tokens,
                "total_tokens": a.prefill_tokens + a.generated_tokens,
            }
            yield chunk(
                {}, _FINISH.get(a.finish_reason, "stop"), usage=usage, video={"cited": _cited(item, service)}
            )
            return
        item = await anext(rest)
