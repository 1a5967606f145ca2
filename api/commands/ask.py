"""`vidsight ask TEXT [--stream ID] [--since S] [--until S] [--json]`: answer a question from memory.

The question is embedded by the retrieval encoder, events are retrieved from the memory bank
(stream and time filters), tokens are selected under the budget (compressor.select_tokens), and the
runner streams the answer to the terminal; the events it used are listed with their time ranges.
Ctrl-C stops generation within one decode step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from vidsight.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("ask", help="ask a question about what the streams showed")
    p.add_argument("text", help="the question")
    p.add_argument("--stream", action="append", default=None, help="limit to this stream (repeatable)")
    p.add_argument("--since", default=None, help="window start: '90', '1:30', an ISO time or '15m ago'")
    p.add_argument("--until", default=None, help="window end, same forms as --since")
    p.add_argument("--events", type=int, default=None, help="events retrieved (default: settings)")
    p.add_argument("--budget", type=int, default=None, help="visual tokens for the LLM (default: settings)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="cap on the answer's tokens")
    p.add_argument("--json", action="store_true", help="one JSON object per text piece, then the answer")
    p.set_defaults(handler=run)


def _range(hit: Any) -> str:
    if hit.start_wall_s is not None and hit.end_wall_s is not None:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(hit.start_wall_s))
        return f"{start}-{time.strftime('%H:%M:%S', time.gmtime(hit.end_wall_s))} UTC"
    return f"{hit.start_pts_s:.1f}s-{hit.end_pts_s:.1f}s"


async def answer_from_memory(
    text: str,
    *,
    bank: Any,
    retrieval: Any,
    runner: Any,
    settings: Settings,
    args: argparse.Namespace,
    text_store: Any = None,
) -> Any:
    """Retrieve, select and stream; prints as pieces arrive. Returns the Answer (None: nothing
    matched). text_store (api.text_search.TextStore): slide text and transcript go into the prompt
    and narrated events get more of the token budget, as in the API's ask."""
    from api.questions import Scope, text_for_ask
    from compressor import select_tokens
    from llm import context_from_selection
    from memory import parse_time

    if bank.events == 0:
        return None  # an empty bank has no embedding dimension to check the question against
    started = time.perf_counter()
    now = time.time()
    since = parse_time(args.since, now) if args.since is not None else None
    until = parse_time(args.until, now) if args.until is not None else None
    query = retrieval.embed_texts([text])[0]
    k = args.events or settings.llm.ask_events
    hits = bank.search(query, k, args.stream, since, until)
    if not hits:
        return None
    scored = [(bank.get_event(h.event_id), h.score) for h in hits]
    weights, prompt = text_for_ask(
        text_store, text, [e for e, _ in scored], hits, Scope(args.stream, since, until)
    )
    selection = select_tokens(
        query,
        scored,
        args.budget or settings.compressor.selection.budget_tokens,
        settings=settings.compressor.selection,
        is_live=all(h.start_wall_s is not None for h in hits),
        device=runner.device,
        event_weights=weights,
    )
    stream = runner.stream(
        prompt, context_from_selection(selection), max_new_tokens=args.max_new_tokens, started_s=started
    )
    try:
        async for piece in stream:
            out = json.dumps({"piece": piece.text}) + "\n" if args.json else piece.text
            sys.stdout.write(out)
            sys.stdout.flush()
    except asyncio.CancelledError:
        await stream.aclose()
        raise
    return stream.answer


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.text_search import open_text_store
    from encoder import EncoderError, RetrievalEncoder
    from llm import LLMError, Runner
    from memory import MemoryBank, MemoryBankError
    from memory.text_index import TextIndexError

    bank = None
    try:
        bank = MemoryBank(settings.memory, data_dir=settings.data_dir, redis_url=settings.redis_url)
        retrieval = RetrievalEncoder.from_settings(settings.encoder)
        runner = Runner(settings.llm)
        answer = asyncio.run(
            answer_from_memory(
                args.text,
                bank=bank,
                retrieval=retrieval,
                runner=runner,
                settings=settings,
                args=args,
                text_store=open_text_store(settings),
            )
        )
    except (LLMError, MemoryBankError, EncoderError, TextIndexError, ValueError, OSError) as exc:
        print(f"vidsight ask: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n(stopped)", file=sys.stderr)
        return 130
    finally:
        if bank is not None:
            bank.close()
    if answer is None:
        print(json.dumps({"answer": None, "cited": []}) if args.json else "No events in memory match.")
        return 0
    if args.json:
        record = {k: v for k, v in asdict(answer).items() if k != "cited"}
        record["cited"] = [asdict(h) for h in answer.cited]
        print(json.dumps(record, default=str))
    else:
        print("\n\nEvents used:")
        for hit in answer.cited:
            print(f"  {hit.stream_id}  {_range(hit)}  score {hit.score:.3f}  ({hit.event_id})")
    return 0
