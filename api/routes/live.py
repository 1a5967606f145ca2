"""The /v1/live WebSocket (protocol: docs/api.md). The key needs the read scope and comes as
`Authorization: Bearer <key>`, or from browsers (which cannot set headers on a WebSocket) as the
subprotocol pair `["vidsight", "bearer.<key>"]`, or as `?token=<key>` (last resort: a query string
ends up in access logs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, WebSocket
from fastapi.responses import JSONResponse

from ..deps import authenticate, websocket_service
from ..errors import ApiError
from ..live import CLOSE_POLICY

router = APIRouter(tags=["live"])
_PROTOCOL = "vidsight"
_BEARER = "bearer."


@router.websocket("/v1/live")
async def live(
    websocket: WebSocket,
    token: Annotated[str | None, Query(max_length=512)] = None,
    authorization: Annotated[str | None, Header()] = None,
    protocols: Annotated[str | None, Header(alias="sec-websocket-protocol")] = None,
) -> None:
    offered = [p.strip() for p in (protocols or "").split(",") if p.strip()]
    from_protocol = next((p[len(_BEARER) :] for p in offered if p.startswith(_BEARER)), None)
    try:
        service = websocket_service(websocket)
        key = authenticate(service, from_protocol or token, authorization, "read")
    except ApiError as exc:
        await refuse(websocket, exc)
        return
    await websocket.accept(subprotocol=_PROTOCOL if _PROTOCOL in offered else None)

    def charge() -> float | None:
        return service.limiter.acquire(key.key_id) if service.api.require_keys else None

    await service.hub.serve(websocket, service.questions, charge)


async def refuse(websocket: WebSocket, exc: ApiError) -> None:
    """Refuse the handshake with the error's HTTP status and JSON body where the server can send one
    (uvicorn can); otherwise accept and close at once with code 1008 and the message as reason."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
        )
    else:
        await websocket.accept()
        await websocket.close(CLOSE_POLICY, exc.message[:120])
