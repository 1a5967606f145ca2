"""`create_app(settings)`: the FastAPI app (REST under /v1, the /v1/live WebSocket, the page at /).

Errors reach clients as `{"error": {"status", "code", "message"}}` with the right status; stack
traces stay in the server log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidsight.settings import Settings

from .errors import ApiError
from .routes import chat, events, health, keys, live, query, streams, videos
from .service import Service

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
_UPLOAD_PATHS = ("/v1/videos/upload",)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings)
        try:
            await service.start()
        except BaseException:
            await service.stop()
            raise
        app.state.service = service
        try:
            yield
        finally:
            app.state.service = None
            await service.stop()

    app = FastAPI(
        title="vidsight",
        version="0.1.0",
        description="Streaming video understanding: live streams and recorded videos, search, questions "
        "with streamed answers, standing alert queries. Every route but /healthz needs an API key "
        "(`Authorization: Bearer vsk_...`, from `vidsight keys create --scope read`).",
        lifespan=lifespan,
    )
    app.state.service = None
    for module in (health, streams, videos, query, events, chat, keys, live):
        app.include_router(module.router)
    _add_alert_routes(app)
    _add_error_handlers(app)
    app.add_middleware(
        BodyLimit, json_bytes=settings.api.max_json_bytes, upload_bytes=settings.api.max_upload_bytes
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app


def _add_alert_routes(app: FastAPI) -> None:
    try:
        from .routes import alerts
    except ImportError as exc:  # the alert engine is not installed in this checkout
        log.warning("alert routes disabled: %s", exc)
        return
    app.include_router(alerts.router)


# -- errors ---------------------------------------------------------------------------------------

_STATUS_OF = {  # errors of other packages, by class name (no import of their internals here)
    "UnknownEventError": 404,
    "UnknownStreamError": 404,
    "TimeRangeError": 400,
    "InvalidEventError": 400,
    "DimensionMismatchError": 400,
    "StoreUnavailableError": 503,
    "DiskFullError": 507,
    "BankClosedError": 503,
    "UnsupportedSourceError": 400,
    "SourceOpenError": 422,
    "NotVideoError": 422,
    "CorruptMediaError": 422,
    "StreamStalledError": 504,
    "PromptError": 400,
    "ContextOverflowError": 400,
    "ModelLoadError": 503,
    "AlertNotFoundError": 404,
    "InvalidAlertError": 422,
    "AlertStoreError": 503,
    "EngineStateError": 503,
}


_CODES = {
    400: "bad_request",
    404: "not_found",
    422: "unprocessable",
    503: "unavailable",
    504: "timeout",
    507: "insufficient_storage",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"status": status, "code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _status_for(exc: Exception) -> int | None:
    for cls in type(exc).__mro__:
        if cls.__name__ in _STATUS_OF:
            return _STATUS_OF[cls.__name__]
    return None


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}")
        return error_response(422, "validation", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
        status = _status_for(exc) or 400
        return error_response(status, _CODES.get(status, "error"), str(exc))

    for cls in _domain_errors():
        app.add_exception_handler(cls, domain_error)

    @app.exception_handler(Exception)
    async def anything(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "internal error; the server log has the details")


def _domain_errors() -> list[type[Exception]]:
    """The error bases of the stages: expected failures with messages meant for the caller."""
    from compressor import CompressorError
    from encoder import EncoderError
    from ingest import IngestError
    from llm import LLMError
    from memory import MemoryBankError

    bases: list[type[Exception]] = [CompressorError, EncoderError, IngestError, LLMError, MemoryBankError]
    try:
        from .alerts import AlertError

        bases.append(AlertError)
    except ImportError:
        pass
    return bases


# -- request bodies -------------------------------------------------------------------------------


class _TooLarge(StarletteHTTPException):
    """Raised while the body is read; FastAPI passes HTTP exceptions through its body parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimit:
    """413 for bodies over the limit: uploads get `upload_bytes`, everything else `json_bytes`. Checked
    on Content-Length first, then on the bytes actually received (chunked bodies)."""

    def __init__(self, app: ASGIApp, *, json_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.json_bytes = json_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope["path"] in _UPLOAD_PATHS else self.json_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_413(send, limit)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _send_413(send, limit)


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(
        {"error": {"status": 413, "code": "payload_too_large", "message": f"request body over {limit} bytes"}}
    ).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
