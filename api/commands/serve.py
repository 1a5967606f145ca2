"""`vidsight serve [--host H] [--port P]`: the API (REST, /v1/live, the page) on uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from vidsight.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the API server (REST, WebSocket, web page)")
    p.add_argument("--host", default=None, help="bind address (default: settings api.host)")
    p.add_argument("--port", type=int, default=None, help="port (default: settings api.port)")
    p.add_argument("--local", action="store_true", help="run the pipeline in this process, without Ray")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    updates: dict[str, Any] = {}
    if args.host:
        updates["host"] = args.host
    if args.port:
        updates["port"] = args.port
    if args.local:
        updates["pipeline"] = "local"
    settings = settings.model_copy(update={"api": settings.api.model_copy(update=updates)})
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_level=args.log_level,
        ws_max_size=256 * 1024,  # client messages are small JSON
        timeout_graceful_shutdown=30,
    )
    return 0
