"""`vidsight ingest URI`: decode a file (in parallel) or read a live stream, and report what came in."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ingest import IngestError, decode_file, open_source
from ingest.uris import SourceKind, parse_source
from vidsight.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("ingest", help="decode a video file or live stream")
    p.add_argument("uri", help="file path, http(s) URL, rtsp:// URL, /dev/videoN or HLS playlist")
    p.add_argument("--fps", type=float, default=None, help="frames kept per second (default: settings)")
    p.add_argument("--workers", type=int, default=None, help="parallel decoders for files (0: one per core)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to read a live stream")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    fps = args.fps or settings.ingest.sample_fps
    started = time.perf_counter()
    frames = 0
    first: Any = None
    last: Any = None
    source = None
    try:
        spec = parse_source(args.uri, allowed_schemes=settings.ingest.allowed_schemes)
        if spec.kind == SourceKind.FILE:
            workers = settings.ingest.decode_workers if args.workers is None else args.workers
            stream = decode_file(spec.target, fps=fps, workers=workers, executor="threads")
        else:
            source = open_source(args.uri, fps=fps, settings=settings.ingest)
            stream = iter(source)
        for frame in stream:
            frames += 1
            first = first or frame
            last = frame
            if args.json:
                print(
                    json.dumps(
                        {
                            "index": frame.index,
                            "pts_s": round(frame.pts_s, 6),
                            "size": [frame.width, frame.height],
                        }
                    )
                )
            if source is not None and time.perf_counter() - started > args.seconds:
                break
    except IngestError as exc:
        print(json.dumps({"error": str(exc), "frames": frames}) if args.json else f"error: {exc}")
        return 1
    finally:
        if source is not None:
            source.close()
    elapsed = time.perf_counter() - started
    summary = {
        "uri": args.uri,
        "frames": frames,
        "first_pts_s": None if first is None else round(first.pts_s, 3),
        "last_pts_s": None if last is None else round(last.pts_s, 3),
        "seconds": round(elapsed, 3),
    }
    print(json.dumps(summary) if args.json else "  ".join(f"{k}={v}" for k, v in summary.items()))
    return 0
