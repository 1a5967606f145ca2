"""Compression: tokens kept, reconstruction PSNR, events and cut accuracy, compressor overhead.

Pipeline per sampled frame: RLT pixel test (compressor) -> encoder (vision tower + retrieval
encoder, fully static frames skipped) -> Compressor (events, merging). On a generated scene
(static camera and background, two moving boxes, one scripted cut placed mid-pair) or `--input FILE`.

- kept_ratio: tokens kept in events / tokens the tower produced for every grid.
- psnr_db: every sampled frame rebuilt from kept patches (copy-forward from the last kept patch at
  each place) against the real frame; 10 log10(255^2 / mean squared error over all frames).
- overhead_ratio: compressor seconds (pixel test + Compressor) / encoder seconds.
- cut_error_frames: sampled frames between the scripted cut and the nearest event start.
Tokens are real model outputs with random weights: the tower's preset (tiny on CPU, 7B on the GPU
machine) sets the speed; merging by cosine and cut detection by retrieval embedding are
exercised, but their quality with trained weights is not claimed here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from benchmarks.harness import machine, ratio, stopwatch

_RETRIEVAL_FOR = {"tiny": "tiny", "3B": "so400m", "7B": "so400m"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default=None, help="a video file instead of the generated scene")
    parser.add_argument(
        "--encoder-size", default="tiny", choices=["tiny", "3B", "7B"], help="Qwen2.5-VL preset"
    )
    parser.add_argument("--fps", type=float, default=2.0, help="frames sampled per second")
    parser.add_argument(
        "--seconds", type=float, default=None, help="generated scene length (default 120, quick 16)"
    )
    parser.add_argument(
        "--size", type=int, default=None, help="generated frame side in px (default 448, quick 224)"
    )
    parser.add_argument("--batch-frames", type=int, default=16, help="frames per encoder call")
    parser.add_argument("--device", default="auto", help="encoder device: auto, cpu, cuda")


def _frame(stream_id: str, index: int, pts_s: float, rgb: np.ndarray) -> Any:
    from ingest import Frame

    return Frame(stream_id, index, round(pts_s * 90000), Fraction(1, 90000), rgb)


def _generated(args: argparse.Namespace) -> tuple[Iterator[tuple[float, np.ndarray]], float]:
    from vidsight.synth.video import moving_boxes_script, render_frame

    seconds = args.seconds or (16.0 if args.quick else 120.0)
    side = args.size or (224 if args.quick else 448)
    frames = int(seconds * args.fps)
    cut_index = 2 * (frames // 4) + 1  # mid-pair: the cut cannot fall on a grid boundary
    cut_s = cut_index / args.fps
    script = moving_boxes_script(side, side, args.fps, seconds, cut_at_s=[cut_s])
    return ((k / args.fps, render_frame(script, k / args.fps)) for k in range(frames)), cut_s


def _decoded(args: argparse.Namespace, layout: Any) -> Iterator[tuple[float, np.ndarray]]:
    from PIL import Image

    from ingest import open_source

    with open_source(args.input, fps=args.fps) as source:
        for frame in source:
            h, w = layout.resized_hw(frame.height, frame.width)
            rgb = frame.rgb
            if (h, w) != rgb.shape[:2]:  # the pixel test must see the tower's patch grid
                rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BICUBIC))
            yield frame.pts_s, rgb


@dataclass
class _Totals:
    frames: int = 0
    squared_error: float = 0.0
    pixels: int = 0
    psnr_min_db: float = math.inf
    compressor_s: float = 0.0
    encoder_s: float = 0.0
    events_reported: int = 0


def run(args: argparse.Namespace) -> Iterator[dict]:
    from compressor import Compressor, StaticPatchFilter, psnr_db
    from encoder import Encoder, EncoderSettings

    settings = args.settings.compressor
    encoder_settings = EncoderSettings(
        vlm_model=args.encoder_size, retrieval_model=_RETRIEVAL_FOR[args.encoder_size], device=args.device
    )
    encoder = Encoder(encoder_settings)
    encoder.warmup()
    source, cut_s = (_decoded(args, encoder.tower.layout), None) if args.input else _generated(args)
    # Next to a GPU encoder the pixel test runs on the GPU too (the frame goes there anyway).
    pixel_device = encoder.tower.device if encoder.tower.device.type == "cuda" else None
    pixel_test = StaticPatchFilter(settings.patch_size, settings.static_tau, device=pixel_device)
    compressor = Compressor(settings)
    totals, events, pts_by_index = _Totals(), [], {}
    batch: list[tuple[Any, bool, np.ndarray]] = []

    def run_batch(final: bool) -> None:
        with stopwatch() as sw:
            encoded = encoder.encode(
                [f for f, _, _ in batch], [s for _, s, _ in batch], [m for _, _, m in batch]
            )
            encoded += encoder.flush() if final else []
        totals.encoder_s += sw.seconds
        rgb_by_index = {f.index: f.rgb for f, _, _ in batch}
        with stopwatch(sync=False) as sw:
            for e in encoded:
                events.extend(compressor.process(e, rgb_by_index.get(e.index)))
            events.extend(compressor.flush() if final else [])
        totals.compressor_s += sw.seconds
        batch.clear()

    for index, (pts_s, rgb) in enumerate(source):
        with stopwatch() as sw:
            test = pixel_test.process(rgb)
        totals.compressor_s += sw.seconds
        _add_error(totals, pixel_test.reconstruction(), rgb, psnr_db)
        pts_by_index[index] = pts_s
        batch.append((_frame("bench", index, pts_s, rgb), test.is_frame_static, test.mask))
        if len(batch) >= args.batch_frames:
            run_batch(final=False)
        yield from _event_records(events, totals)
    run_batch(final=True)
    yield from _event_records(events, totals)
    yield _summary(args, events, totals, pts_by_index, cut_s)


def _add_error(totals: _Totals, rebuilt: np.ndarray, rgb: np.ndarray, psnr_db: Any) -> None:
    totals.squared_error += float(np.sum((rebuilt.astype(np.float64) - rgb) ** 2))
    totals.pixels += rgb.size
    totals.psnr_min_db = min(totals.psnr_min_db, psnr_db(rebuilt, rgb))
    totals.frames += 1


def _event_records(events: list, totals: _Totals) -> Iterator[dict]:
    for event in events[totals.events_reported :]:
        yield {
            "event": event.event_id,
            "start_s": round(event.start_pts_s, 3),
            "end_s": round(event.end_pts_s, 3),
            "tokens_in": event.stats.tokens_in,
            "tokens_kept": event.stats.tokens_kept,
        }
    totals.events_reported = len(events)


def _summary(
    args: argparse.Namespace,
    events: list,
    totals: _Totals,
    pts_by_index: dict[int, float],
    cut_s: float | None,
) -> dict:
    tokens_in = sum(e.stats.tokens_in for e in events)
    tokens_kept = sum(e.stats.tokens_kept for e in events)
    mse = totals.squared_error / max(totals.pixels, 1)
    cut_error = None
    if cut_s is not None:
        cut_index = min(pts_by_index, key=lambda i: (pts_by_index[i] < cut_s - 1e-9, pts_by_index[i]))
        index_by_pts = {round(p, 6): i for i, p in pts_by_index.items()}
        starts = [index_by_pts[round(e.start_pts_s, 6)] for e in events[1:]]
        cut_error = min((abs(s - cut_index) for s in starts), default=None)
    return {
        "bench": "compress",
        "input": args.input or "generated",
        "encoder_size": args.encoder_size,
        "frames": totals.frames,
        "tokens_in": tokens_in,
        "tokens_kept": tokens_kept,
        "kept_ratio": ratio(tokens_kept, tokens_in, 4),
        "psnr_db": round(10 * math.log10(255**2 / mse), 2) if mse > 0 else math.inf,
        "psnr_min_db": round(totals.psnr_min_db, 2),
        "events": len(events),
        "encoder_frames_skipped": sum(e.stats.encoder_frames_skipped for e in events),
        "compressor_s": round(totals.compressor_s, 4),
        "encoder_s": round(totals.encoder_s, 4),
        "overhead_ratio": ratio(totals.compressor_s, totals.encoder_s, 4),
        "cut_error_frames": cut_error,
        "machine": machine(),
    }
