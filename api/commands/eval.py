"""`vidsight eval QA.jsonl`: multiple-choice accuracy of the configured VLM on videos.

Each line: {"video": path, "question": str, "options": [str, ...], "answer": "B" | 1 | "option text"}.
Each video is decoded at --fps, encoded by the LLM's own vision tower and handed whole (every token)
to the runner; the predicted option is the one whose letter the model scores highest as the first
token of its answer. For users with real weights (VIDSIGHT_LLM__MODEL_ID); with the default random
preset the accuracy is chance and says only that the path runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vidsight.settings import Settings


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="multiple-choice accuracy on a QA.jsonl file")
    p.add_argument("qa", type=Path, help="JSON lines: video, question, options, answer")
    p.add_argument("--fps", type=float, default=1.0, help="frames sampled per second of video")
    p.add_argument("--max-frames", type=int, default=64, help="most frames per video (uniformly kept)")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N items only")
    p.add_argument("--json", action="store_true", help="one JSON object per item, then a summary")
    p.set_defaults(handler=run)


class BadItemError(ValueError):
    pass


def answer_index(answer: Any, options: list[str]) -> int:
    """'B', 1 or the option's text -> its index."""
    if isinstance(answer, bool):
        raise BadItemError(f"answer must be a letter, an index or an option's text, got {answer!r}")
    if isinstance(answer, int) and 0 <= answer < len(options):
        return answer
    if isinstance(answer, str):
        text = answer.strip()
        if len(text) == 1 and text.upper() in "ABCDEFGHIJ"[: len(options)]:
            return "ABCDEFGHIJ".index(text.upper())
        if text in options:
            return options.index(text)
    raise BadItemError(
        f"answer {answer!r} is not a letter A-{'ABCDEFGHIJ'[len(options) - 1]}, an index or an option"
    )


def read_items(path: Path, limit: int | None) -> list[dict[str, Any]]:
    items = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        missing = {"video", "question", "options", "answer"} - set(item)
        if missing:
            raise BadItemError(f"{path}:{n}: missing {sorted(missing)}")
        if not isinstance(item["options"], list) or not 2 <= len(item["options"]) <= 10:
            raise BadItemError(f"{path}:{n}: options must be a list of 2 to 10 strings")
        item["answer_index"] = answer_index(item["answer"], item["options"])
        item["video"] = (
            str((path.parent / item["video"]).resolve())
            if not Path(item["video"]).is_absolute()
            else item["video"]
        )
        items.append(item)
    return items[:limit] if limit is not None else items


def load_frames(path: str, fps: float, max_frames: int, workers: int) -> tuple[list[np.ndarray], list[float]]:
    from ingest import decode_file

    frames = list(decode_file(path, fps=fps, workers=workers, executor="threads"))
    if not frames:
        raise BadItemError(f"{path}: no frames decoded")
    keep = np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)
    kept = [frames[i] for i in sorted(set(keep.tolist()))]
    return [f.rgb for f in kept], [f.pts_s for f in kept]


def run(args: argparse.Namespace, settings: Settings) -> int:
    from encoder import VisionTower
    from ingest import IngestError
    from llm import ContextEvent, LLMError, Runner
    from llm.visual_input import encode_event

    try:
        items = read_items(args.qa, args.limit)
        runner = Runner(settings.llm)
    except (OSError, ValueError, LLMError) as exc:
        print(f"vidsight eval: {exc}", file=sys.stderr)
        return 1
    tower = VisionTower.from_module(runner.model.model.visual, settings.encoder)
    events: dict[str, Any] = {}
    correct = 0
    for i, item in enumerate(items):
        try:
            if item["video"] not in events:
                rgb, pts = load_frames(
                    item["video"], args.fps, args.max_frames, settings.ingest.decode_workers
                )
                events[item["video"]] = encode_event(tower, rgb, pts, stream_id="eval", event_id=f"eval-{i}")
            context = [ContextEvent.whole(events[item["video"]])]
            predicted = runner.choose_option(item["question"], item["options"], context)
        except (IngestError, BadItemError, LLMError) as exc:
            print(f"vidsight eval: item {i}: {exc}", file=sys.stderr)
            return 1
        hit = predicted == item["answer_index"]
        correct += hit
        if args.json:
            print(
                json.dumps(
                    {
                        "index": i,
                        "video": item["video"],
                        "predicted": "ABCDEFGHIJ"[predicted],
                        "answer": "ABCDEFGHIJ"[item["answer_index"]],
                        "correct": hit,
                    }
                ),
                flush=True,
            )
    summary = {
        "items": len(items),
        "correct": correct,
        "accuracy": round(correct / len(items), 4) if items else None,
        "model": settings.llm.model_id
        or f"random {settings.llm.model_preset} preset (accuracy means nothing)",
    }
    print(json.dumps(summary) if args.json else "  ".join(f"{k}={v}" for k, v in summary.items()))
    return 0
