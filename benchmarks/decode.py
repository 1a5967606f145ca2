"""Parallel file decoding (QuickDecoder-style) against sequential decoders, same file, same sampling.

Timed in one run: a naive sequential decode that converts every frame to RGB, a sequential
decode that converts only the sampled frames (the reference), our parallel decoder, and
torchcodec for the same timestamps when it is installed. Sequential decodes use one decoder
thread; `seq_threaded_s` adds FFmpeg's own frame threading for context.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.harness import machine, ratio
from ingest import decode_file
from ingest.filesource import iter_file_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, help="decode this file instead of a generated one")
    parser.add_argument("--fps", type=float, default=1.0, help="sampling rate (default 1)")
    parser.add_argument("--workers", type=int, default=0, help="parallel workers (0: one per core)")
    parser.add_argument("--seconds", type=float, default=None, help="generated video length")
    parser.add_argument(
        "--height", type=int, default=720, choices=[360, 720, 1080], help="generated video height"
    )
    parser.add_argument("--executor", choices=["ray", "threads"], default="ray")
    parser.add_argument("--skip-naive", action="store_true", help="skip the slowest baseline (long videos)")


def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    seconds = args.seconds or (40.0 if args.quick else 130.0)
    path = args.input or generated_video(Path(args.settings.data_dir) / "bench", seconds, args.height)
    workers = args.workers or os.cpu_count() or 1
    yield {"stage": "input", "path": str(path), **describe(path)}

    naive_s: float | None = None
    if not args.skip_naive:
        naive_s, naive_frames = timed(lambda: naive_sequential(path))
        yield {"stage": "naive", "seconds": round(naive_s, 3), "decoded_frames": naive_frames}
    seq_s, seq = timed(lambda: list(iter_file_frames(str(path), fps=args.fps, decoder_threads=1)))
    yield {"stage": "sequential", "seconds": round(seq_s, 3), "frames": len(seq)}
    threaded_s, _ = timed(
        lambda: sum(1 for _ in iter_file_frames(str(path), fps=args.fps, decoder_threads=0))
    )
    yield {"stage": "sequential_threaded", "seconds": round(threaded_s, 3)}

    if args.executor == "ray":
        from vidsight.pipeline import init_ray

        init_ray(args.settings.ray_address, num_cpus=workers)
        list(decode_file(path, fps=args.fps, workers=workers, executor="ray"))  # warm the worker pool
    one_s, _ = timed(
        lambda: sum(1 for _ in decode_file(path, fps=args.fps, workers=1, executor=args.executor))
    )
    yield {"stage": "parallel_1_worker", "seconds": round(one_s, 3)}
    par_s, par = timed(lambda: list(decode_file(path, fps=args.fps, workers=workers, executor=args.executor)))
    identical = len(par) == len(seq) and all(
        a.pts == b.pts and np.array_equal(a.rgb, b.rgb) for a, b in zip(par, seq, strict=True)
    )
    yield {"stage": "parallel", "seconds": round(par_s, 3), "frames": len(par), "identical": identical}

    torchcodec_s = time_torchcodec(path, [f.pts_s for f in seq])
    yield {
        "bench": "decode",
        "frames": len(seq),
        "workers": workers,
        "executor": args.executor,
        "naive_s": None if naive_s is None else round(naive_s, 3),
        "seq_s": round(seq_s, 3),
        "seq_threaded_s": round(threaded_s, 3),
        "parallel_1_worker_s": round(one_s, 3),
        "parallel_s": round(par_s, 3),
        "torchcodec_s": None if torchcodec_s is None else round(torchcodec_s, 3),
        "speedup_vs_seq": ratio(seq_s, par_s),
        "speedup_vs_naive": ratio(naive_s, par_s),
        "speedup_vs_torchcodec": ratio(torchcodec_s, par_s),
        "identical": identical,
        "machine": machine(),
    }


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def naive_sequential(path: Path) -> int:
    """Decode and convert every frame, as a simple reader would, then sample."""
    frames = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "NONE"
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            frames += 1
    return frames


def time_torchcodec(path: Path, pts_s: list[float]) -> float | None:
    try:
        from torchcodec.decoders import VideoDecoder  # type: ignore[import-not-found]
    except Exception:  # not installed, or built for another torch
        return None
    start = time.perf_counter()
    decoder = VideoDecoder(str(path), seek_mode="exact")
    decoder.get_frames_played_at(seconds=pts_s)
    return time.perf_counter() - start


def describe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        return {
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "codec": stream.codec_context.name,
            "duration_s": duration,
        }


def generated_video(cache_dir: Path, seconds: float, height: int) -> Path:
    """An H.264 file with x264's default GOP (250) and B-frames: a typical encoded file, cached."""
    width = {360: 640, 720: 1280, 1080: 1920}[height]
    path = cache_dir / f"decode_{width}x{height}_{int(seconds)}s.mp4"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        subprocess.run(
            [
                ffmpeg,
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size={width}x{height}:rate=30",
                "-t",
                str(seconds),
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                str(tmp),
            ],
            check=True,
        )
    else:  # the GPU machine has no ffmpeg binary: encode a synthetic scene with PyAV
        from vidsight.synth.video import moving_boxes_script, write_video

        script = moving_boxes_script(width=width, height=height, fps=30.0, duration_s=seconds)
        write_video(tmp, script, gop_frames=250, bframes=3, preset="veryfast")
    tmp.rename(path)
    return path
