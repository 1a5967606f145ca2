"""`vidsight demo`: one command that exercises the whole system on the embedded defaults."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ingest import decode_file
from vidsight.settings import Settings
from vidsight.synth.video import moving_boxes_script, write_video


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="generate a sample video and run the pipeline on it")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    out = Demo(args.json)
    sample = Path(settings.data_dir) / "demo" / "sample.mp4"
    if not sample.exists():
        sample.parent.mkdir(parents=True, exist_ok=True)
        script = moving_boxes_script(width=640, height=360, fps=30.0, duration_s=60.0, cut_at_s=[20.0, 40.0])
        write_video(sample, script, gop_frames=60)
    out.say("sample", path=str(sample), note="60 s, 640x360, scripted scene cuts at 20 s and 40 s")
    started = time.perf_counter()
    frames = list(decode_file(sample, fps=settings.ingest.sample_fps, workers=settings.ingest.decode_workers))
    out.say(
        "decoded",
        frames=len(frames),
        first_pts_s=frames[0].pts_s,
        last_pts_s=frames[-1].pts_s,
        seconds=round(time.perf_counter() - started, 3),
    )
    return 0


class Demo:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def say(self, step: str, **fields: Any) -> None:
        if self.as_json:
            print(json.dumps({"step": step, **fields}, default=str), flush=True)
        else:
            print(f"[{step}] " + "  ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
