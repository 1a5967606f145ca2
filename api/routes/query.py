"""/v1/search and /v1/ask."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from llm import AnswerPiece

from ..deps import ReadKey, ServiceDep
from ..live import done_message
from ..questions import Done, Scope, result_of
from ..schemas import AskRequest, AskResponse, SearchRequest, SearchResponse, SearchResult
from ..sse import sse_response

router = APIRouter(prefix="/v1", tags=["search and ask"])


@router.post("/search", response_model=SearchResponse, summary="Events matching a text query")
async def search(body: SearchRequest, service: ServiceDep, _key: ReadKey) -> SearchResponse:
    started = time.perf_counter()
    scope = Scope(body.streams, body.since, body.until)
    k = body.k or service.api.search_k
    hits = await run_in_threadpool(service.questions.search, body.query, scope, k, body.channels)
    clock = service.questions.clock_of
    return SearchResponse(
        query=body.query,
        results=[SearchResult(**result_of(h, clock(h.stream_id))) for h in hits],
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream=true"}},
    summary="Answer a question about the footage, with cited events",
)
async def ask(body: AskRequest, service: ServiceDep, key: ReadKey) -> Any:
    scope = Scope(body.streams, body.since, body.until)
    answer = service.questions.answer(
        body.question, scope, k=body.k, max_new_tokens=body.max_new_tokens, owner=f"key:{key.key_id}"
    )
    first = await anext(answer)  # retrieval errors become a 4xx here, before any byte is sent
    if body.stream:
        return sse_response(_ask_messages(first, answer, service))
    done = first if isinstance(first, Done) else None
    async for item in answer:
        if isinstance(item, Done):
            done = item
    assert done is not None
    message = done_message("", done, service.questions.clock_of)
    return AskResponse(
        question=body.question,
        answer=message["answer"],
        cited=[SearchResult(**c) for c in message["cited"]],
        finish_reason=message["finish_reason"],
        ttft_ms=message["ttft_ms"],
        generated_tokens=message["generated_tokens"],
        visual_tokens=message["visual_tokens"],
        model=service.models["llm"],
    )


async def _ask_messages(
    first: AnswerPiece | Done, rest: AsyncIterator[AnswerPiece | Done], service: Any
) -> AsyncIterator[dict[str, Any]]:
    async def items() -> AsyncIterator[AnswerPiece | Done]:
        yield first
        async for item in rest:
            yield item

    async for item in items():
        if isinstance(item, AnswerPiece):
            yield {"type": "token", "text": item.text, "tokens": item.tokens}
        else:
            message = done_message("", item, service.questions.clock_of)
            message.pop("id")
            yield message
