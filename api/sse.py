"""Server-Sent Events: `data: <json>` frames, ending in `data: [DONE]` (OpenAI's convention)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from .errors import ApiError

log = logging.getLogger(__name__)


def frame(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, default=str)
    return f"data: {data}\n\n"


async def _guarded(messages: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """Errors after the response started travel as an `error` message; the stream still ends in [DONE]."""
    try:
        async for message in messages:
            yield frame(message)
    except ApiError as exc:
        yield frame({"type": "error", "code": exc.code, "message": exc.message})
    except Exception as exc:
        log.warning("event stream failed: %s", exc, exc_info=True)
        yield frame({"type": "error", "code": "internal", "message": "the answer failed; see the server log"})
    yield frame("[DONE]")


def sse_response(messages: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    return StreamingResponse(
        _guarded(messages),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
