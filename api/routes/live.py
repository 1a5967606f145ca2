"""The /v1/live WebSocket (protocol: docs/api.md). The key comes as `Authorization: Bearer` or,
for browsers, `?token=`; it needs the read scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, WebSocket

from ..deps import authenticate, websocket_service
from ..errors import ApiError
from ..live import CLOSE_POLICY

router = APIRouter(tags=["live"])


@router.websocket("/v1/live")
async def live(
    websocket: WebSocket,
    token: Annotated[str | None, Query(max_length=512)] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    try:
        service = websocket_service(websocket)
        authenticate(service, token, authorization, "read")
    except ApiError as exc:
        # Refuse before accepting: the client's handshake fails (HTTP 403 from the server).
        await websocket.close(CLOSE_POLICY, exc.message[:120])
        return
    await websocket.accept()
    await service.hub.serve(websocket, service.questions)
