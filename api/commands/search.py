"""`vidsight search TEXT [--stream ID] [--since S] [--until S] [--k N] [--json]`: find events by meaning.

The text is embedded by the retrieval encoder (settings.encoder) and matched against the memory
bank's event embeddings, optionally filtered to streams and a window on each stream's clock
(presentation seconds for files, Unix seconds for live streams; see memory.records). Prints each
hit's stream, time range, score and thumbnail path, best first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from vidsight.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("search", help="find events in memory that match a text")
    p.add_argument("text", help="what to look for, e.g. 'a person at the door'")
    p.add_argument("--stream", action="append", default=None, help="limit to this stream (repeatable)")
    p.add_argument("--since", default=None, help="window start: '90', '1:30', an ISO time or '15m ago'")
    p.add_argument("--until", default=None, help="window end, same forms as --since")
    p.add_argument("--k", type=int, default=10, help="how many events (1-1000)")
    p.add_argument("--json", action="store_true", help="one JSON object per hit, then a summary")
    p.set_defaults(handler=run)


def format_range(hit: Any) -> str:
    """Wall-clock range (UTC) for live streams, presentation seconds for files."""
    if hit.start_wall_s is not None and hit.end_wall_s is not None:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(hit.start_wall_s))
        return f"{start}-{time.strftime('%H:%M:%S', time.gmtime(hit.end_wall_s))} UTC"
    return f"{_clock(hit.start_pts_s)}-{_clock(hit.end_pts_s)}"


def _clock(seconds: float) -> str:
    minutes, s = divmod(seconds, 60.0)
    hours, m = divmod(int(minutes), 60)
    return f"{hours}:{m:02d}:{s:04.1f}" if hours else f"{m}:{s:04.1f}"


def search_memory(
    text: str, *, bank: Any, retrieval: Any, args: argparse.Namespace
) -> tuple[list[Any], dict]:
    """(hits, timings). Raises the bank's and the encoder's errors."""
    from memory import parse_time

    now = time.time()
    since = parse_time(args.since, now) if args.since is not None else None
    until = parse_time(args.until, now) if args.until is not None else None
    started = time.perf_counter()
    query = retrieval.embed_texts([text])[0]
    embedded = time.perf_counter()
    hits = bank.search(query, args.k, args.stream, since, until)
    done = time.perf_counter()
    return hits, {
        "embed_ms": round((embedded - started) * 1000, 2),
        "search_ms": round((done - embedded) * 1000, 2),
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    from encoder import EncoderError, RetrievalEncoder
    from memory import MemoryBank, MemoryBankError

    bank = None
    try:
        bank = MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url)
        retrieval = RetrievalEncoder.from_settings(settings.encoder)
        hits, timings = search_memory(args.text, bank=bank, retrieval=retrieval, args=args)
    except (MemoryBankError, EncoderError, ValueError, OSError) as exc:
        print(json.dumps({"error": str(exc)}) if args.json else f"vidsight search: {exc}", file=sys.stderr)
        return 1
    finally:
        if bank is not None:
            bank.close()
    if args.json:
        for hit in hits:
            print(json.dumps(asdict(hit)))
        print(json.dumps({"query": args.text, "hits": len(hits), **timings}))
        return 0
    if not hits:
        print("No events in memory match.")
        return 0
    for hit in hits:
        thumbnail = hit.thumbnail_path or "(no thumbnail)"
        print(f"{hit.score:6.3f}  {hit.stream_id}  {format_range(hit)}  {thumbnail}  ({hit.event_id})")
    return 0
