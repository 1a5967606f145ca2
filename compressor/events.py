"""Event segmentation: cut a stream into events where what it shows changes.

The unit is the temporal grid (Qwen2.5-VL: a pair of frames; its tokens cover both), so cuts fall
on grid boundaries. Before grid g, with the open event at least `min_grids` long, we cut when
  - the cosine between the pooled retrieval embeddings of grids g-1 and g is below `similarity_tau`
    (FastVID's DySeg uses 0.9), or
  - at least `cut_changed_fraction` of the token positions changed from grid g-1 to g (a hard
    cut changes every position, whatever the retrieval encoder makes of it), or
  - grid indices jump (frames were lost) or the token grid changes size: always, whatever the length.
An event that reaches `max_grids` is split at its `lowest_cuts` lowest-similarity transitions
(DySeg's "c lowest"), each part at least `min_grids` long; every part but the last is closed and
the last stays open. Memory is bounded by `max_grids` grids.

`segment_events` is the offline form over whole arrays; `EventSegmenter` takes one
`EncodedFrame` at a time and closes the same events.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from encoder.records import EncodedFrame

from ._tensors import changed_fraction, changed_fractions, unit_rows, unit_rows_of_many
from .errors import CompressorInputError


def unit_norm(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float64. For retrieval embeddings
    (a few per grid); tokens go through `_tensors` instead."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)


def _unit_vector(x: np.ndarray) -> np.ndarray:
    """`unit_norm` of one [D] vector, without numpy's general-purpose overhead (once per grid)."""
    x = x.astype(np.float64)
    norm = math.sqrt(float(np.add.reduce(x * x)))  # as np.linalg.norm sums, so ties agree
    return x / norm if norm else x


def cosine(a: np.ndarray, b: np.ndarray) -> Any:
    """Row-wise dot product of unit rows; one formula for streaming and offline, so ties agree."""
    return np.sum(a * b, axis=-1)


def token_change_fraction(
    prev: np.ndarray | torch.Tensor | None, cur: np.ndarray | torch.Tensor | None, similarity: float
) -> float:
    """Share of positions whose token cosine from prev [h*w, D] to cur [h*w, D] is below `similarity`.

    numpy or tensors on any device. The segmenter reuses each grid's unit rows instead of this.
    """
    if prev is None or cur is None or tuple(prev.shape) != tuple(cur.shape):
        return 0.0
    return changed_fraction(unit_rows(prev)[0], unit_rows(cur)[0], similarity)


@dataclass(frozen=True, slots=True)
class CutRules:
    similarity_tau: float = 0.9
    min_grids: int = 2
    max_grids: int = 60
    lowest_cuts: int = 1
    cut_changed_fraction: float | None = 0.75

    def __post_init__(self) -> None:
        if self.min_grids < 1 or self.lowest_cuts < 1:
            raise CompressorInputError(
                f"min_grids and lowest_cuts must be >= 1, got {self.min_grids}, {self.lowest_cuts}"
            )
        if self.max_grids < 2 * self.min_grids:
            raise CompressorInputError(
                f"max_grids must be >= 2 * min_grids, got max={self.max_grids}, min={self.min_grids}"
            )

    def is_cut(self, open_grids: int, similarity: float, changed_fraction: float, is_forced: bool) -> bool:
        if is_forced:
            return True
        if open_grids < self.min_grids:
            return False
        if similarity < self.similarity_tau:
            return True
        return self.cut_changed_fraction is not None and changed_fraction >= self.cut_changed_fraction

    def split_points(self, similarities: Sequence[float]) -> list[int]:
        """Where to split a full event: offsets j (cut before its j-th grid), ascending.

        similarities[j] is the transition into grid j (similarities[0] is unused). The lowest
        transitions come first; each part stays at least min_grids long. Ties go to the LATER
        transition: in a scene where nothing changes every transition ties, and splitting at the
        earliest would close a min_grids-long event at every new grid from then on.
        """
        n = len(similarities)
        candidates = sorted(
            range(self.min_grids, n - self.min_grids + 1), key=lambda j: (similarities[j], -j)
        )
        chosen: list[int] = []
        for j in candidates:
            if len(chosen) == self.lowest_cuts:
                break
            if all(abs(j - c) >= self.min_grids for c in chosen):
                chosen.append(j)
        return sorted(chosen)


def segment_events(
    embeddings: np.ndarray,
    rules: CutRules,
    *,
    changed_fraction: np.ndarray | None = None,
    grid_index: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """Half-open [start, end) ranges over grids. embeddings: [G, D] pooled per grid.

    changed_fraction: [G], the token change from grid g-1 to g (entry 0 unused);
    grid_index: [G], the grids' stream indices (a jump forces a cut); default 0..G-1.
    """
    g = embeddings.shape[0]
    e = unit_norm(embeddings)
    sims = np.ones(g)
    sims[1:] = cosine(e[1:], e[:-1])
    changed = np.zeros(g) if changed_fraction is None else np.asarray(changed_fraction, dtype=np.float64)
    index = np.arange(g) if grid_index is None else np.asarray(grid_index)
    ranges: list[tuple[int, int]] = []
    start = 0
    for i in range(g):
        if i > 0 and rules.is_cut(i - start, sims[i], changed[i], bool(index[i] != index[i - 1] + 1)):
            ranges.append((start, i))
            start = i
        if i + 1 - start == rules.max_grids:
            base = start
            for j in rules.split_points([1.0, *sims[base + 1 : i + 1]]):
                ranges.append((start, base + j))
                start = base + j
    if start < g:
        ranges.append((start, g))
    return ranges


@dataclass(slots=True)
class Grid:
    """The frames of one temporal grid, with what segmentation needs from them."""

    grid_index: int
    frames: list[EncodedFrame] = field(default_factory=list)
    embedding: np.ndarray | None = None  # [D] float64, set when the grid completes
    similarity: float = 1.0  # pooled-embedding cosine with the previous grid of the stream
    changed_fraction: float = 0.0  # token positions changed since the previous grid
    # Set when the grid completes, on the device where the encoder left the tokens:
    units: torch.Tensor | None = None  # [h*w, D] float32: the grid's tokens scaled to unit norm
    token_norms: torch.Tensor | None = None  # [h*w] float32: their norms (units * norms = tokens)

    @property
    def grid_hw(self) -> tuple[int, int]:
        return self.frames[0].grid_hw

    def complete(self, previous: Grid | None = None, previous_source: object = None) -> object:
        """Pool the embedding and turn the tokens into unit rows and norms, once, for segmentation
        and merging (unless `EventSegmenter.prepare` did it already). Returns the tokens object
        it took (a grid carried over by the encoder shares the previous grid's: then its unit rows
        are shared too, not recomputed)."""
        self.embedding = self.pooled_embedding()
        source = next((f.tokens for f in self.frames if f.tokens is not None), None)
        if source is None:
            return None
        if previous is not None and source is previous_source:
            self.units, self.token_norms = previous.units, previous.token_norms
        elif self.units is None:
            self.units, self.token_norms = unit_rows(source)
        # The raw tokens are not needed any more: drop them so that only one copy stays alive.
        self.frames = [f if f.tokens is None else dataclasses.replace(f, tokens=None) for f in self.frames]
        return source

    def pooled_embedding(self) -> np.ndarray:
        """[D] float64 unit norm: the mean of the frames' retrieval embeddings."""
        first = self.frames[0].embedding
        if len(self.frames) == 1:
            return _unit_vector(first)
        total = first.copy()  # summed in the embeddings' dtype, in order, as np.mean along axis 0
        for frame in self.frames[1:]:
            total += frame.embedding
        return _unit_vector(total / total.dtype.type(len(self.frames)))


_Units = tuple[torch.Tensor, torch.Tensor]  # ([P, D] unit rows, [P] norms) of one grid


class EventSegmenter:
    """Streaming segmentation of one stream's `EncodedFrame`s into lists of `Grid`s (events).

    `process(frame)` returns the events this frame closed (usually none); `flush()` closes the
    rest. A grid is complete when a frame of a later grid arrives, so events lag by one frame.
    """

    def __init__(self, rules: CutRules, change_similarity: float = 0.9) -> None:
        self.rules = rules
        self.change_similarity = change_similarity
        self._stream_id: str | None = None
        self._pending: Grid | None = None
        self._previous: Grid | None = None  # last completed grid, open or already closed
        self._previous_source: object = None  # the tokens object it came with (shared when carried over)
        self._open: list[Grid] = []
        # Work done ahead by `prepare`, by id() of the token objects (held in _ahead_sources):
        self._ahead_units: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._ahead_changes: dict[tuple[int, int], float] = {}
        self._ahead_sources: list[object] = []

    def prepare(self, frames: Sequence[EncodedFrame]) -> None:
        """Work ahead for frames about to be `process`ed, in order: the unit rows of their token
        grids and the token change between consecutive grids, in one pass on the tokens' device
        with one host sync for the batch (instead of one per grid). Optional: same results."""
        chain = self._token_chain(frames)
        fresh = [i for i, link in enumerate(chain) if link[1] is None]
        for i, units in zip(fresh, unit_rows_of_many([chain[i][0] for i in fresh]), strict=True):  # type: ignore[misc]
            chain[i] = (chain[i][0], units)
        self._ahead_sources = [source for source, _ in chain]
        self._ahead_units = {id(source): units for source, units in chain if units is not None}
        pending = self._pending
        if pending is not None and pending.units is None and pending.frames[0].tokens is not None:
            pending.units, pending.token_norms = self._ahead_units[id(pending.frames[0].tokens)]
        known, self._ahead_changes = self._ahead_changes, {}
        pairs = []
        for a, b in itertools.pairwise(chain):
            key = (id(a[0]), id(b[0]))
            if key in known:  # (last grid, pending grid): worked out with the previous batch
                self._ahead_changes[key] = known[key]
            elif a[1] is not None and b[1] is not None and a[1][0].shape == b[1][0].shape:
                pairs.append((key, a[1][0], b[1][0]))
        changes = changed_fractions([(a, b) for _, a, b in pairs], self.change_similarity)
        self._ahead_changes.update((key, c) for (key, _, _), c in zip(pairs, changes, strict=True))

    def _token_chain(self, frames: Sequence[EncodedFrame]) -> list[tuple[object, _Units | None]]:
        """(tokens, unit rows if known) of the grids `_push` will compare, in order: the last
        completed grid, the pending one, then each new token grid; a carried-over grid (the same
        tokens object again) is left out, it needs no work."""
        chain: list[tuple[object, _Units | None]] = []
        previous, pending = self._previous, self._pending
        if previous is not None and previous.units is not None and previous.token_norms is not None:
            chain.append((self._previous_source, (previous.units, previous.token_norms)))
        if pending is not None and pending.frames[0].tokens is not None:
            known = None if pending.units is None else (pending.units, pending.token_norms)
            chain.append((pending.frames[0].tokens, known))  # type: ignore[arg-type]
        for frame in frames:
            if frame.tokens is not None and not (chain and chain[-1][0] is frame.tokens):
                chain.append((frame.tokens, None))
        return chain

    def process(self, frame: EncodedFrame) -> list[list[Grid]]:
        if self._stream_id is None:
            self._stream_id = frame.stream_id
        elif frame.stream_id != self._stream_id:
            raise CompressorInputError(
                f"one segmenter per stream: got {frame.stream_id!r} after {self._stream_id!r}"
            )
        if self._pending is not None and frame.grid_index == self._pending.grid_index:
            self._pending.frames.append(frame)
            return []
        if self._pending is not None and frame.grid_index < self._pending.grid_index:
            raise CompressorInputError(
                f"grid_index went back from {self._pending.grid_index} to {frame.grid_index} "
                f"(frame {frame.index}): frames must arrive in order"
            )
        closed = self._push(self._pending) if self._pending is not None else []
        self._pending = Grid(frame.grid_index, [frame])
        if frame.tokens is not None and id(frame.tokens) in self._ahead_units:
            self._pending.units, self._pending.token_norms = self._ahead_units[id(frame.tokens)]
        return closed

    def flush(self) -> list[list[Grid]]:
        closed = self._push(self._pending) if self._pending is not None else []
        if self._open:
            closed.append(self._open)
        self._pending, self._previous, self._previous_source, self._open = None, None, None, []
        self._ahead_units, self._ahead_changes, self._ahead_sources = {}, {}, []
        return closed

    def _push(self, grid: Grid) -> list[list[Grid]]:
        closed: list[list[Grid]] = []
        previous = self._previous
        source = grid.complete(previous, self._previous_source)
        if previous is not None:
            assert previous.embedding is not None and grid.embedding is not None
            grid.similarity = float(cosine(previous.embedding, grid.embedding))
            ahead = self._ahead_changes.get((id(self._previous_source), id(source)))
            if grid.units is not None and grid.units is previous.units:
                grid.changed_fraction = 0.0  # carried over by the encoder: the very same tokens
            elif ahead is not None:
                grid.changed_fraction = ahead
            elif (
                previous.units is not None
                and grid.units is not None
                and previous.units.shape == grid.units.shape
            ):
                grid.changed_fraction = changed_fraction(previous.units, grid.units, self.change_similarity)
            is_forced = grid.grid_index != previous.grid_index + 1 or grid.grid_hw != previous.grid_hw
            if self._open and self.rules.is_cut(
                len(self._open), grid.similarity, grid.changed_fraction, is_forced
            ):
                closed.append(self._open)
                self._open = []
        self._open.append(grid)
        self._previous, self._previous_source = grid, source
        if len(self._open) == self.rules.max_grids:
            start = 0
            for j in self.rules.split_points([1.0, *(g.similarity for g in self._open[1:])]):
                closed.append(self._open[start:j])
                start = j
            self._open = self._open[start:]
        return closed
