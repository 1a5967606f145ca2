"""What every benchmark shares: timing with a device sync, percentiles, machine description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def sync_device() -> None:
    """Wait for queued GPU work, so a timer measures it (no-op without CUDA or torch)."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Stopwatch:
    def __init__(self) -> None:
        self.seconds = 0.0


@contextmanager
def stopwatch(sync: bool = True) -> Iterator[Stopwatch]:
    """`with stopwatch() as sw: ...` then sw.seconds; the device is synced on both sides."""
    sw = Stopwatch()
    if sync:
        sync_device()
    start = time.perf_counter()
    try:
        yield sw
    finally:
        if sync:
            sync_device()
        sw.seconds = time.perf_counter() - start


def time_call(fn: Callable[[], Any], *, repeats: int = 1, warmup: int = 0, sync: bool = True) -> list[float]:
    """Seconds per call, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        with stopwatch(sync) as sw:
            fn()
        times.append(sw.seconds)
    return times


def percentile(values: list[float], q: float) -> float:
    """q in [0, 100], linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo))


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, digits)


def machine() -> dict[str, Any]:
    """Where the numbers came from."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            info["cpu"] = names[0]
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info
