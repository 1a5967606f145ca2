"""mRoPE positions for Qwen2.5-VL prompts built from retained visual tokens.

Policy: original positions. A visual token at stream grid (t, h, w) gets exactly the position
the model's `get_rope_index` gives it in the stream's full video:

    (base + floor(t * interval), base + h, base + w),  interval = tokens_per_second * seconds_per_grid

with the product taken in float32, as transformers does. `base` is fixed per stream: the text
cursor when that stream's first visual token enters the prompt (right after its first
<|vision_start|>). Every later event of the stream, in this turn or a follow-up, reuses that
base, so pruning (EVS, selection, merging) never moves a survivor.

Text (chat template, each event's time-range header, <|vision_start|>/<|vision_end|>, the
question, generated tokens) takes consecutive positions from a cursor, the same on all three
axes. After a vision block the cursor resumes by one of two rules (`text_resume`):

- "max_position": one past the largest position used so far (Qwen's reference code, vLLM and
  transformers < 5.3). Text stays monotonic after every video block.
- "spatial_extent": block start + max(h, w) (transformers >= 5.3 `get_rope_index`), which
  ignores the block's temporal extent.

With one event holding a whole video and nothing pruned, both rules reproduce the installed
model's `get_rope_index` wherever that rule is the model's own. Headers between events take
cursor positions; a header may sit at positions that overlap its event's temporal range (the
visual tokens do not move to make room for text).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TEXT_RESUME_RULES = ("max_position", "spatial_extent")


def temporal_positions(t: np.ndarray, interval: float) -> np.ndarray:
    """floor(t * interval) in float32, as `get_vision_position_ids` computes it. t: [N] -> [N] int64."""
    scaled = np.asarray(t, dtype=np.float32) * np.float32(interval)
    return np.floor(scaled).astype(np.int64)


def vision_positions(thw: np.ndarray, base: int, interval: float) -> np.ndarray:
    """Positions of visual tokens. thw: [N, 3] (t, h, w) grid coordinates -> [3, N] int64."""
    thw = np.asarray(thw)
    if thw.ndim != 2 or thw.shape[1] != 3:
        raise ValueError(f"thw must be [N, 3], got {thw.shape}")
    out = np.empty((3, thw.shape[0]), dtype=np.int64)
    out[0] = temporal_positions(thw[:, 0], interval) + base
    out[1] = thw[:, 1].astype(np.int64) + base
    out[2] = thw[:, 2].astype(np.int64) + base
    return out


@dataclass
class PositionTracker:
    """Hands out positions to a prompt built piece by piece, across a session's turns."""

    tokens_per_second: float
    text_resume: str = "max_position"
    cursor: int = 0
    max_position: int = -1
    bases: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.text_resume not in TEXT_RESUME_RULES:
            raise ValueError(f"text_resume must be one of {TEXT_RESUME_RULES}, got {self.text_resume!r}")

    def text(self, n: int) -> np.ndarray:
        """Positions of n text tokens: [3, n]."""
        pos = np.arange(self.cursor, self.cursor + n, dtype=np.int64)
        self.cursor += n
        if n:
            self.max_position = max(self.max_position, int(pos[-1]))
        return np.broadcast_to(pos, (3, n)).copy()

    def visual(
        self, stream_id: str, thw: np.ndarray, grid_hw: tuple[int, int], seconds_per_grid: float
    ) -> np.ndarray:
        """Positions of one vision block's tokens ([N, 3] grid coords -> [3, N]); moves the cursor past it."""
        block_start = self.cursor
        base = self.bases.setdefault(stream_id, block_start)
        pos = vision_positions(thw, base, self.tokens_per_second * seconds_per_grid)
        if pos.shape[1]:
            self.max_position = max(self.max_position, int(pos.max()))
        if self.text_resume == "max_position":
            self.cursor = max(self.cursor, self.max_position + 1)
        else:
            self.cursor = block_start + max(grid_hw)
        return pos


def estimate_seconds_per_grid(grid_pts_s: list[np.ndarray], default_s: float) -> float:
    """Median spacing of grid start times over a stream's events, rounded to 1 us so that float noise
    in pts cannot move floor(t * interval) across an integer."""
    diffs = [np.diff(np.asarray(p, dtype=np.float64)) for p in grid_pts_s if len(p) > 1]
    flat = np.concatenate(diffs) if diffs else np.empty(0)
    flat = flat[flat > 0]
    if flat.size == 0:
        return default_s
    return round(float(np.median(flat)), 6)
