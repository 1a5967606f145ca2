"""Frame sampling by target rate: for each instant origin + k / fps keep the nearest frame.

One rule serves every path (sequential file decode, the parallel decoder's plan, live
readers), so they agree frame for frame. Ties go to the earlier frame. A frame nearest to
several instants (target rate above the source rate) is kept once. Instants after the last
frame are not sampled.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class NearestSampler(Generic[T]):
    """Online nearest-frame selection with one frame of look-ahead.

    Feed frames in presentation order with `offer`; it returns the items whose selection is
    final. `flush` returns the last one if it was selected. With `fps=None` every frame is kept.
    """

    def __init__(self, fps: float | None, origin_s: float | None = None) -> None:
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 or None, got {fps!r}")
        self._period_s = None if fps is None else 1.0 / fps
        self._origin_s = origin_s
        self._next_instant = 0  # k of the first instant not yet assigned a frame
        self._pending: tuple[float, T] | None = None
        self._pending_selected = False
        self._last_pts_s: float | None = None

    def _instant_s(self, k: int) -> float:
        assert self._origin_s is not None and self._period_s is not None
        return self._origin_s + k * self._period_s

    def offer(self, pts_s: float, item: T) -> list[T]:
        return [item for item, _ in self.offer_marked(pts_s, item)]

    def offer_marked(self, pts_s: float, item: T) -> list[tuple[T, bool]]:
        """Like `offer`, with each decided item marked True when only an instant after its
        own pts chose it: such a frame is kept only because a later frame arrived."""
        if self._last_pts_s is not None and pts_s <= self._last_pts_s:
            raise ValueError(f"frames must come in increasing pts order: {pts_s} after {self._last_pts_s}")
        self._last_pts_s = pts_s
        if self._period_s is None:
            return [(item, False)]
        if self._origin_s is None:
            self._origin_s = pts_s
        is_selected = False
        is_pending_chosen_later = False
        while (t := self._instant_s(self._next_instant)) <= pts_s:
            if self._pending is not None and t - self._pending[0] <= pts_s - t:
                is_pending_chosen_later = True
            else:
                is_selected = True
            self._next_instant += 1
        decided: list[tuple[T, bool]] = []
        if self._pending is not None and (self._pending_selected or is_pending_chosen_later):
            decided.append((self._pending[1], not self._pending_selected))
        self._pending, self._pending_selected = (pts_s, item), is_selected
        return decided

    def flush(self) -> list[T]:
        """End of input: the last frame is kept only if an instant at or before it chose it."""
        decided = [self._pending[1]] if self._pending is not None and self._pending_selected else []
        self._pending, self._pending_selected = None, False
        return decided
