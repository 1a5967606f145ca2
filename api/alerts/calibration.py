"""Per-stream calibration: is this score an outlier for the stream it came from?

One global cosine threshold fails both ways: a busy street scores every query high, a dark parking
lot scores everything low. So each (query, stream) keeps a rolling window of its recent scores, and
a score counts only when it is above `median + k * spread` of that window, spread being the robust
standard deviation (1.4826 * median absolute deviation, which one burst of alarms does not inflate)
with a floor for streams whose scores never move. An absolute floor applies on top, so a stream of
meaningless scores (random weights, an empty room) cannot fire on its own noise. While a window
holds fewer than `min_samples` scores, only a stricter warm-up floor applies.

A window holds the scores of events BEFORE the one being judged; the judged event joins it after.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True, slots=True)
class Sample:
    """One event's raw scores for one query. None: the channel had nothing to score."""

    event_id: str
    visual_logit: float | None
    text_score: float | None

    def as_list(self) -> list[str | float | None]:
        return [self.event_id, self.visual_logit, self.text_score]

    @classmethod
    def from_list(cls, row: list) -> Sample:
        return cls(str(row[0]), _opt_float(row[1]), _opt_float(row[2]))


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float  # a score passes when >= value
    center: float  # median of the window (nan while warming up)
    spread: float  # robust std of the window, at least the channel's minimum
    samples: int
    is_warm: bool


def outlier_threshold(
    history: Iterable[float],
    *,
    k: float,
    min_spread: float,
    min_samples: int,
    floor: float,
    warmup_floor: float,
) -> Threshold:
    """max(floor, median + k * max(min_spread, 1.4826 * MAD)); only warmup_floor below min_samples."""
    values = np.fromiter(history, dtype=np.float64)
    n = int(values.size)
    if n < min_samples:
        return Threshold(warmup_floor, float("nan"), float("nan"), n, False)
    center = float(np.median(values))
    spread = max(min_spread, MAD_TO_STD * float(np.median(np.abs(values - center))))
    return Threshold(max(floor, center + k * spread), center, spread, n, True)


class ScoreWindow:
    """The last `size` samples of one (query, stream), oldest first, with the event ids they came from
    so that processing an event twice adds it once."""

    def __init__(self, size: int, samples: Iterable[Sample] = ()) -> None:
        self._samples: deque[Sample] = deque(samples, maxlen=size)
        self._ids = {s.event_id for s in self._samples}

    def __len__(self) -> int:
        return len(self._samples)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, sample: Sample) -> None:
        if len(self._samples) == self._samples.maxlen:
            self._ids.discard(self._samples[0].event_id)
        self._samples.append(sample)
        self._ids.add(sample.event_id)

    def visual(self) -> list[float]:
        return [s.visual_logit for s in self._samples if s.visual_logit is not None]

    def text(self) -> list[float]:
        # an event without text is evidence that this stream's text does not match: it counts as 0
        return [s.text_score if s.text_score is not None else 0.0 for s in self._samples]

    def samples(self) -> list[Sample]:
        return list(self._samples)
