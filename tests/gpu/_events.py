"""Events for the GPU tests: `grids` temporal grids of h x w random tokens at their true positions."""

from __future__ import annotations

import numpy as np

from compressor.records import Event, EventStats


def grid_event(
    d: int,
    *,
    event_id: str = "e",
    t0: int = 0,
    grids: int = 6,
    hw: tuple[int, int] = (4, 4),
    seed: int | None = None,
) -> Event:
    """seed: of the token values (default: t0, so events at other times differ)."""
    rng = np.random.default_rng(t0 if seed is None else seed)
    h, w = hw
    n = grids * h * w
    t, hh, ww = np.meshgrid(np.arange(t0, t0 + grids), np.arange(h), np.arange(w), indexing="ij")
    emb = np.ones(8, np.float32) / np.sqrt(8)
    return Event(
        event_id,
        "cam",
        2.0 * t0,
        2.0 * (t0 + grids),
        None,
        None,
        emb,
        rng.standard_normal((n, d)).astype(np.float16),
        np.stack([t.ravel(), hh.ravel(), ww.ravel()], 1).astype(np.int32),
        np.ones(n, np.int32),
        t0,
        (t0 + np.arange(grids)) * 2.0,
        hw,
        EventStats(2 * grids, grids, n, n),
    )
