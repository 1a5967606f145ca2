"""The `vidsight` console script. Each sub-command lives in api/commands/<name>.py with
`add_parser(subparsers)`; the parser's `handler(args, settings) -> int` runs it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vidsight.settings import Settings

COMMANDS = ("serve", "ingest", "search", "ask", "eval", "demo", "keys", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidsight", description="Streaming video understanding service.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"api.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's message names the bad variable and the allowed values
        print(f"vidsight: bad settings: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args, settings) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
