"""Small random Event records for memory tests (built directly, as the compressor would)."""

from __future__ import annotations

import numpy as np

from compressor.records import Event, EventStats


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_event(
    i: int,
    stream_id: str = "cam",
    *,
    rng: np.random.Generator | None = None,
    dim: int = 16,
    tokens: int = 4,
    d_llm: int = 8,
    start_s: float | None = None,
    duration_s: float = 1.0,
    wall: bool = False,
    thumbnails: int = 1,
    embedding: np.ndarray | None = None,
    event_id: str | None = None,
    grids: int = 2,
) -> Event:
    rng = rng or np.random.default_rng(i)
    start = float(i) if start_s is None else start_s
    emb = rng.standard_normal(dim).astype(np.float32) if embedding is None else embedding
    wall0 = 1.7e9 + start if wall else None
    return Event(
        event_id=event_id or f"{stream_id}:{i}",
        stream_id=stream_id,
        start_pts_s=start,
        end_pts_s=start + duration_s,
        start_wall_s=wall0,
        end_wall_s=None if wall0 is None else wall0 + duration_s,
        embedding=emb,
        tokens=rng.standard_normal((tokens, d_llm)).astype(np.float16),
        positions=rng.integers(0, 50, (tokens, 3)).astype(np.int32),
        counts=rng.integers(1, 4, tokens).astype(np.int32),
        grid_t0=i,
        grid_pts_s=start + np.arange(grids) * duration_s / max(grids, 1),
        grid_hw=(2, 2),
        stats=EventStats(frames=4, grids=2, tokens_in=8, tokens_kept=tokens),
        thumbnails=[b"\xff\xd8\xff" + bytes([i % 256]) * 10 for _ in range(thumbnails)],
        text=f"event {i}",
    )
