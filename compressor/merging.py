"""Token merging inside an event (HoliTom / DyCoke style), on top of the RLT and EVS tests.

At each token position (h, w), an event is a sequence of runs: a run starts with a kept token
and absorbs the following tokens at that position that repeat it. A token repeats the run when
  - its pixels are static (every patch it covers passed the RLT test against the last kept patch), or
  - EVS dropped it (it is among the least changed since the previous grid), or
  - its cosine with the run's first token is at least `similarity` (HoliTom's temporal merge; we
    compare with the run's first token, not the previous one, so a slow drift ends the run).
A run becomes one token: the mean of its tokens (HoliTom), at the position of its first token,
with the count of tokens it stands for. The first grid of an event always starts every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CompressorInputError
from .events import unit_norm


@dataclass(frozen=True, slots=True, repr=False)
class MergedTokens:
    tokens: np.ndarray  # [N, D] float32, ordered by (t, h, w)
    positions: np.ndarray  # [N, 3] int32 (t, h, w), t counted from the event's first grid
    counts: np.ndarray  # [N] int32: source tokens each stands for (the run's length in grids)
    merged_static: int  # tokens absorbed because their pixels were static
    merged_evs: int  # ... because EVS dropped them
    merged_similar: int  # ... because they matched the run's first token

    def __repr__(self) -> str:
        n, d = self.tokens.shape
        return f"MergedTokens(tokens=[{n}, {d}], sources={self.counts.sum()})"


def merge_event_tokens(
    tokens: np.ndarray,
    *,
    is_static: np.ndarray | None = None,
    is_evs_kept: np.ndarray | None = None,
    similarity: float | None = None,
) -> MergedTokens:
    """tokens: [T, h, w, D]; is_static, is_evs_kept: [T, h, w] bool (None: no such test)."""
    if tokens.ndim != 4:
        raise CompressorInputError(f"tokens must be [T, h, w, D], got {tokens.shape}")
    t_grids, h, w, d = tokens.shape
    for name, mask in (("is_static", is_static), ("is_evs_kept", is_evs_kept)):
        if mask is not None and mask.shape != (t_grids, h, w):
            raise CompressorInputError(f"{name} must be [{t_grids}, {h}, {w}], got {mask.shape}")
    flat = tokens.reshape(t_grids, h * w, d).astype(np.float32)
    static = np.zeros((t_grids, h * w), bool) if is_static is None else is_static.reshape(t_grids, -1)
    dropped = np.zeros((t_grids, h * w), bool) if is_evs_kept is None else ~is_evs_kept.reshape(t_grids, -1)
    runs = _Runs(flat[0])
    merged = {"static": 0, "evs": 0, "similar": 0}
    for t in range(1, t_grids):
        repeat = static[t].copy()
        merged["static"] += int(repeat.sum())
        by_evs = dropped[t] & ~repeat
        merged["evs"] += int(by_evs.sum())
        repeat |= by_evs
        if similarity is not None:
            by_similarity = ~repeat & (np.sum(unit_norm(flat[t]) * runs.head_unit, axis=-1) >= similarity)
            merged["similar"] += int(by_similarity.sum())
            repeat |= by_similarity
        runs.step(t, flat[t], repeat)
    runs.close_all()
    out_tokens, out_t, out_hw, out_counts = runs.collected()
    order = np.lexsort((out_hw, out_t))
    positions = np.stack([out_t, out_hw // w, out_hw % w], axis=1).astype(np.int32)
    return MergedTokens(
        out_tokens[order],
        positions[order],
        out_counts[order].astype(np.int32),
        merged["static"],
        merged["evs"],
        merged["similar"],
    )


class _Runs:
    """The open run at every position: its first token, running sum, length and start grid."""

    def __init__(self, first: np.ndarray) -> None:  # first: [P, D]
        self.head_unit = unit_norm(first)
        self.sums = first.astype(np.float64)
        self.counts = np.ones(first.shape[0], np.int64)
        self.start_t = np.zeros(first.shape[0], np.int64)
        self._out: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def step(self, t: int, tokens: np.ndarray, repeat: np.ndarray) -> None:
        self.sums[repeat] += tokens[repeat]
        self.counts[repeat] += 1
        new = np.flatnonzero(~repeat)
        if new.size:
            self._emit(new)
            self.head_unit[new] = unit_norm(tokens[new])
            self.sums[new] = tokens[new]
            self.counts[new] = 1
            self.start_t[new] = t

    def close_all(self) -> None:
        self._emit(np.arange(self.sums.shape[0]))

    def _emit(self, where: np.ndarray) -> None:
        mean = (self.sums[where] / self.counts[where, None]).astype(np.float32)
        self._out.append((mean, self.start_t[where].copy(), where.copy(), self.counts[where].copy()))

    def collected(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        tokens, start_t, hw, counts = zip(*self._out, strict=True)
        return np.concatenate(tokens), np.concatenate(start_t), np.concatenate(hw), np.concatenate(counts)
