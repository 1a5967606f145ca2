"""Prompt assembly: chat template, each event introduced by its time range, its retained visual
tokens between <|vision_start|> and <|vision_end|>, then the question.

A prompt is a list of pieces (text ids, or one event's kept tokens). `lay_out` flattens pieces
into per-token arrays with mRoPE positions (see positions.py) and prefill groups: a new group
starts when the visual tokens of the current one already span `group_grids` temporal grids.
Groups are the unit of KV pruning and bound the prefill's peak memory.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from compressor.records import Event, Selection

from .errors import PromptError
from .positions import PositionTracker
from .tokenizer import QWEN_SPECIAL_IDS, TextTokenizer


@dataclass(frozen=True, slots=True, repr=False)
class ContextEvent:
    """One event as the prompt holds it: the event and which of its tokens are kept."""

    event: Event
    token_indices: np.ndarray  # [K] int64, ascending indices into event.tokens
    relevance: float = 0.0

    @classmethod
    def whole(cls, event: Event, relevance: float = 0.0) -> ContextEvent:
        return cls(event, np.arange(event.tokens.shape[0], dtype=np.int64), relevance)

    def __post_init__(self) -> None:
        idx = np.asarray(self.token_indices)
        n = self.event.tokens.shape[0]
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise PromptError(f"token_indices must be [K] within [0, {n}) for {self.event.event_id}")

    def __repr__(self) -> str:
        kept = f"{len(self.token_indices)}/{self.event.tokens.shape[0]}"
        return f"ContextEvent({self.event.event_id!r}, kept={kept})"


def context_from_selection(selection: Selection) -> list[ContextEvent]:
    """compressor's Selection (events in time order, kept token indices) as the prompt's context."""
    return [
        ContextEvent(se.event, np.asarray(se.kept, dtype=np.int64), se.relevance) for se in selection.events
    ]


@dataclass(frozen=True, slots=True)
class TextPiece:
    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class VisualPiece:
    context: ContextEvent


Piece = TextPiece | VisualPiece


@dataclass(frozen=True, slots=True)
class Specials:
    im_start: int
    im_end: int
    vision_start: int
    vision_end: int

    @classmethod
    def of(cls, config: object) -> Specials:
        return cls(
            im_start=QWEN_SPECIAL_IDS["<|im_start|>"],
            im_end=QWEN_SPECIAL_IDS["<|im_end|>"],
            vision_start=int(config.vision_start_token_id),  # type: ignore[attr-defined]
            vision_end=int(config.vision_end_token_id),  # type: ignore[attr-defined]
        )


def format_time_range(event: Event) -> str:
    """'cam1 00:01:05-00:01:15' from pts, or UTC wall-clock times where the event has them."""
    if event.start_wall_s is not None and event.end_wall_s is not None:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.start_wall_s))
        end = time.strftime("%H:%M:%S", time.gmtime(event.end_wall_s))
        return f"{event.stream_id} {start}-{end} UTC"
    return f"{event.stream_id} {_hms(event.start_pts_s)}-{_hms(event.end_pts_s)}"


def _hms(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def turn_pieces(
    tokenizer: TextTokenizer,
    specials: Specials,
    context: Sequence[ContextEvent],
    question: str,
    *,
    system_prompt: str | None,
    pending_ids: Sequence[int] = (),
    has_headers: bool = True,
) -> list[Piece]:
    """One user turn. The first turn opens with the system message (`system_prompt` not None); a
    follow-up first closes the previous answer (its last sampled token is still `pending_ids`)."""
    s = specials
    enc = tokenizer.encode
    head: list[int] = []
    if system_prompt is not None:
        head += [s.im_start, *enc("system\n" + system_prompt), s.im_end, *enc("\n")]
    else:
        head += list(pending_ids)
        if not head or head[-1] != s.im_end:
            head.append(s.im_end)
        head += enc("\n")
    head += [s.im_start, *enc("user\n")]
    pieces: list[Piece] = [TextPiece(tuple(head))]
    for c in context:
        header = enc(format_time_range(c.event) + ": ") if has_headers else []
        pieces.append(TextPiece((*header, s.vision_start)))
        pieces.append(VisualPiece(c))
        pieces.append(TextPiece((s.vision_end,)))
    pieces.append(TextPiece((*enc(question), s.im_end, *enc("\n"), s.im_start, *enc("assistant\n"))))
    return pieces


@dataclass
class Layout:
    """A prompt flattened to tokens. Visual rows are gathered lazily into the model's dtype."""

    ids: np.ndarray  # [L] int64, -1 at visual tokens
    positions: np.ndarray  # [3, L] int64
    group: np.ndarray  # [L] int32, prefill group of each token (non-decreasing)
    visual_rows: list[tuple[ContextEvent, np.ndarray]] = field(default_factory=list)  # per visual piece

    @property
    def is_visual(self) -> np.ndarray:
        return self.ids < 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def lay_out(
    pieces: Sequence[Piece], tracker: PositionTracker, *, group_grids: int, seconds_per_grid: dict[str, float]
) -> Layout:
    """Assign positions (advancing `tracker`) and prefill groups to every token of `pieces`."""
    ids, pos, grp = [], [], []
    rows: list[tuple[ContextEvent, np.ndarray]] = []
    group, grids_in_group, last_grid = 0, 0, None
    for piece in pieces:
        if isinstance(piece, TextPiece):
            n = len(piece.ids)
            ids.append(np.asarray(piece.ids, dtype=np.int64))
            pos.append(tracker.text(n))
            grp.append(np.full(n, group, dtype=np.int32))
            continue
        ev = piece.context.event
        idx = np.asarray(piece.context.token_indices, dtype=np.int64)
        thw = ev.positions[idx]
        spg = seconds_per_grid[ev.stream_id]
        pos.append(tracker.visual(ev.stream_id, thw, ev.grid_hw, spg))
        ids.append(np.full(len(idx), -1, dtype=np.int64))
        rows.append((piece.context, idx))
        token_groups = np.empty(len(idx), dtype=np.int32)
        t = thw[:, 0]
        starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]]) if len(t) else np.empty(0, dtype=np.int64)
        for j, end in zip(starts, [*starts[1:], len(t)], strict=True):
            key = (ev.stream_id, int(t[j]))
            if key != last_grid:
                if grids_in_group >= group_grids:
                    group, grids_in_group = group + 1, 0
                grids_in_group += 1
                last_grid = key
            token_groups[j:end] = group
        grp.append(token_groups)
    if not ids:
        raise PromptError("empty prompt")
    return Layout(np.concatenate(ids), np.concatenate(pos, axis=1), np.concatenate(grp), rows)
