"""The Event record: what the memory bank stores and the LLM later reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class EventStats:
    frames: int  # sampled frames in the event
    grids: int  # temporal grids (Qwen2.5-VL: pairs of frames)
    tokens_in: int  # merged vision tokens the encoder produced for the event
    tokens_kept: int  # tokens retained after static-patch drop, EVS and merging
    encoder_frames_skipped: int = 0  # frames whose every patch was static (encoder not run)
    static_patches: int = 0  # patches the RLT test marked static
    patches: int = 0  # patches tested
    tokens_merged_static: int = 0  # tokens merged into a run because their pixels were static
    tokens_merged_evs: int = 0  # ... because EVS dropped them
    tokens_merged_similar: int = 0  # ... because they matched the run's first token (cosine)

    @property
    def kept_ratio(self) -> float:
        return self.tokens_kept / self.tokens_in if self.tokens_in else 0.0


@dataclass(frozen=True, slots=True, repr=False)
class Event:
    """A stretch of one stream between two cuts, compressed.

    Positions follow the original-position policy: every kept token keeps the (t, h, w) it had
    in the full stream, t counting temporal grids from the stream's first grid, h and w in
    merged-token units. `grid_pts_s[i]` is the pts of the first frame of grid `grid_t0 + i`.
    """

    event_id: str
    stream_id: str
    start_pts_s: float
    end_pts_s: float
    start_wall_s: float | None
    end_wall_s: float | None
    embedding: np.ndarray  # [D] float32, unit norm: the pooled retrieval embedding
    tokens: np.ndarray  # [N, D_llm] float16
    positions: np.ndarray  # [N, 3] int32 (t, h, w)
    counts: np.ndarray  # [N] int32: source tokens each kept token stands for
    grid_t0: int  # first temporal grid of the event
    grid_pts_s: np.ndarray  # [T] float64
    grid_hw: tuple[int, int]
    stats: EventStats
    thumbnails: list[bytes] = field(default_factory=list)  # JPEG keyframes
    text: str = ""  # OCR / speech text attached by the text channels
    grid_embeddings: np.ndarray | None = None  # [T, D] float16: pooled retrieval embedding per grid

    def __post_init__(self) -> None:
        n = self.tokens.shape[0]
        if self.embedding.ndim != 1:
            raise ValueError(f"embedding must be [D], got {self.embedding.shape}")
        if self.tokens.ndim != 2:
            raise ValueError(f"tokens must be [N, D], got {self.tokens.shape}")
        if self.positions.shape != (n, 3):
            raise ValueError(f"positions must be [{n}, 3], got {self.positions.shape}")
        if self.counts.shape != (n,):
            raise ValueError(f"counts must be [{n}], got {self.counts.shape}")
        if self.grid_embeddings is not None and (
            self.grid_embeddings.ndim != 2 or self.grid_embeddings.shape[0] != len(self.grid_pts_s)
        ):
            raise ValueError(
                f"grid_embeddings must be [{len(self.grid_pts_s)}, D], got {self.grid_embeddings.shape}"
            )
        if self.end_pts_s < self.start_pts_s:
            raise ValueError(f"event ends before it starts: {self.start_pts_s} > {self.end_pts_s}")

    @property
    def duration_s(self) -> float:
        return self.end_pts_s - self.start_pts_s

    def __repr__(self) -> str:
        return (
            f"Event({self.event_id!r}, stream={self.stream_id!r}, "
            f"pts=[{self.start_pts_s:.2f}, {self.end_pts_s:.2f}] s, embedding=[{self.embedding.shape[0]}], "
            f"tokens=[{self.tokens.shape[0]}, {self.tokens.shape[1]}], grids={len(self.grid_pts_s)}, "
            f"kept={self.stats.tokens_kept}/{self.stats.tokens_in})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class SelectedEvent:
    """One retrieved event and the tokens of it that a question keeps.

    `kept` indexes `event.tokens` in ascending order, which is time order: survivors keep the
    original (t, h, w) positions of `event.positions`.
    """

    event: Event
    kept: np.ndarray  # [K] int64, ascending
    relevance: float  # the retrieval score the event came with
    share: float  # fraction of the budget given to this event

    def __post_init__(self) -> None:
        if self.kept.ndim != 1:
            raise ValueError(f"kept must be [K], got {self.kept.shape}")
        if self.kept.size and (np.any(np.diff(self.kept) <= 0) or self.kept[0] < 0):
            raise ValueError("kept must be strictly ascending, non-negative token indices")
        if self.kept.size and self.kept[-1] >= self.event.tokens.shape[0]:
            raise ValueError(
                f"kept index {self.kept[-1]} past the event's {self.event.tokens.shape[0]} tokens"
            )

    @property
    def tokens(self) -> np.ndarray:  # [K, D_llm] float16
        return self.event.tokens[self.kept]

    @property
    def positions(self) -> np.ndarray:  # [K, 3] int32 (t, h, w)
        return self.event.positions[self.kept]

    @property
    def counts(self) -> np.ndarray:  # [K] int32
        return self.event.counts[self.kept]

    def __repr__(self) -> str:
        return (
            f"SelectedEvent({self.event.event_id!r}, kept={self.kept.size}/{self.event.tokens.shape[0]}, "
            f"relevance={self.relevance:.3f}, share={self.share:.3f})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class Selection:
    """What the LLM reads for one question: events in time order, each with its kept tokens."""

    events: list[SelectedEvent]
    budget_tokens: int
    tokens_available: int  # tokens the retrieved events hold in all

    @property
    def tokens_selected(self) -> int:
        return sum(e.kept.size for e in self.events)

    def __repr__(self) -> str:
        return (
            f"Selection(events={len(self.events)}, tokens={self.tokens_selected}/{self.tokens_available}, "
            f"budget={self.budget_tokens})"
        )
