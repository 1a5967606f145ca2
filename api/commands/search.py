"""`vidsight search TEXT [--stream ID] [--since S] [--until S] [--k N] [--channel C] [--json]`.

The text is embedded by the retrieval encoder (settings.encoder) and matched against the memory
bank's event embeddings, optionally filtered to streams and a window on each stream's clock
(presentation seconds for files, Unix seconds for live streams; see memory.records). Where
`vidsight ingest` also wrote the text channels (`<data_dir>/text`: slide OCR and speech), the
visual hits are fused with keyword and MiniLM hits over that text (memory.hybrid, the same search
the API runs); `--channel visual|ocr|speech` narrows it. Prints each hit's stream, time range,
score, channel, snippet and thumbnail path, best first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from vidsight.settings import Settings

CHANNELS = ("visual", "ocr", "speech")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("search", help="find events in memory that match a text")
    p.add_argument("text", help="what to look for, e.g. 'a person at the door'")
    p.add_argument("--stream", action="append", default=None, help="limit to this stream (repeatable)")
    p.add_argument("--since", default=None, help="window start: '90', '1:30', an ISO time or '15m ago'")
    p.add_argument("--until", default=None, help="window end, same forms as --since")
    p.add_argument("--k", type=int, default=10, help="how many events (1-1000)")
    p.add_argument(
        "--channel",
        action="append",
        choices=CHANNELS,
        default=None,
        help="only hits through this channel (repeatable; default: all that exist)",
    )
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
    text: str, *, bank: Any, retrieval: Any, args: argparse.Namespace, text_store: Any = None
) -> tuple[list[Any], dict]:
    """(hits, timings). text_store: an api.text_search.TextStore to fuse with, or None (visual
    only). Raises the bank's, the encoder's and the text index's errors."""
    from api.questions import Scope
    from memory import parse_time

    now = time.time()
    since = parse_time(args.since, now) if args.since is not None else None
    until = parse_time(args.until, now) if args.until is not None else None
    channels = getattr(args, "channel", None)
    started = time.perf_counter()
    query = retrieval.embed_texts([text])[0]
    embedded = time.perf_counter()
    if bank.events == 0:
        hits = []  # an empty bank has no dimension yet to check the query against
    else:
        hits = bank.search(query, args.k, args.stream, since, until)
    searched = time.perf_counter()
    if text_store is not None:
        hits = text_store.search(text, hits, Scope(args.stream, since, until), args.k, channels)
    elif channels is not None and "visual" not in channels:
        hits = []
    done = time.perf_counter()
    return hits, {
        "embed_ms": round((embedded - started) * 1000, 2),
        "search_ms": round((searched - embedded) * 1000, 2),
        "text_ms": round((done - searched) * 1000, 2),
        "channels": list(channels or CHANNELS if text_store is not None else ["visual"]),
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.text_search import open_text_store
    from encoder import EncoderError, RetrievalEncoder
    from memory import MemoryBank, MemoryBankError
    from memory.text_index import TextIndexError

    bank = None
    try:
        bank = MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url)
        retrieval = RetrievalEncoder.from_settings(settings.encoder)
        text_store = open_text_store(settings)
        hits, timings = search_memory(
            args.text, bank=bank, retrieval=retrieval, args=args, text_store=text_store
        )
    except (MemoryBankError, EncoderError, TextIndexError, ValueError, OSError) as exc:
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
        where = f"{hit.stream_id}  {format_range(hit)}"
        print(f"{hit.score:6.3f}  {where}  {hit.channel:<6}  {thumbnail}  ({hit.event_id})")
        if hit.snippet:
            print(f"        {hit.snippet}")
    return 0
