"""K concurrent live RTSP streams on loopback, each read by its own Ray actor, sampled at 1 fps.

The streams are GStreamer test patterns (720p, 30 fps, x264 zerolatency). For every frame the
consumer receives, lag = now - the real time the frame stands for; a stream falling behind real
time shows up as growing lag, a slow consumer as drops.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.harness import machine, percentile
from vidsight.synth.servers import RtspServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=None, help="measurement time (default 30, quick 15)")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--height", type=int, default=720, choices=[360, 720, 1080])


def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    import ray

    from vidsight.pipeline import LiveReaderActor, init_ray

    seconds = args.seconds or (15.0 if args.quick else 30.0)
    width = {360: 640, 720: 1280, 1080: 1920}[args.height]
    settings = args.settings.ingest
    init_ray(args.settings.ray_address)
    with RtspServer(mounts=args.streams, width=width, height=args.height, fps=30) as server:
        actors = [
            LiveReaderActor.remote(server.url(i), f"cam{i}", args.fps, settings)  # type: ignore[attr-defined]
            for i in range(args.streams)
        ]
        try:
            _wait_until_live(ray, actors, timeout_s=30)
            lags, frames = _consume(ray, actors, seconds)
            health = ray.get([a.health.remote() for a in actors])
        finally:
            ray.get([a.close.remote() for a in actors])
            for a in actors:
                ray.kill(a)
    for h in health:
        yield {
            "stage": "stream",
            **{k: h[k] for k in ("stream_id", "state", "frames", "dropped", "reconnects")},
        }
    yield {
        "bench": "live",
        "streams": args.streams,
        "seconds": seconds,
        "resolution": f"{width}x{args.height}",
        "frames": frames,
        "max_lag_s": round(max(lags), 3) if lags else None,
        "p95_lag_s": round(percentile(lags, 95), 3) if lags else None,
        "dropped": sum(h["dropped"] for h in health),
        "reconnects": sum(h["reconnects"] for h in health),
        "machine": machine(),
    }


def _wait_until_live(ray: Any, actors: list[Any], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = [h["state"] for h in ray.get([a.health.remote() for a in actors])]
        if all(s == "live" for s in states):
            return
        time.sleep(0.2)
    raise RuntimeError(f"streams not live after {timeout_s} s: {states}")


def _consume(ray: Any, actors: list[Any], seconds: float) -> tuple[list[float], int]:
    """Pull from every stream until `seconds` pass; lag measured when each frame is received."""
    for a in actors:  # discard what queued while the others connected
        ray.get(a.get_batch.remote(1000, 0.0))
    lags: list[float] = []
    deadline = time.monotonic() + seconds
    pending = {a.get_batch.remote(16, 0.5): a for a in actors}
    while time.monotonic() < deadline:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            actor = pending.pop(ref)
            now = time.time()
            lags.extend(now - f.wall_time_s for f in ray.get(ref))
            pending[actor.get_batch.remote(16, 0.5)] = actor
    ray.get(list(pending))
    return lags, len(lags)
