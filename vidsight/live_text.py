"""On-screen text for live streams: the slide tracker reads the screen as frames go by (OCR only
when the picture changes), and each closed event gets the text that was shown during it, so text
alerts and search work on cameras too, not only on recorded videos."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from typing import Any

from compressor import Event
from ingest import Frame


class LiveText:
    """One stream's screen text over time. Plain Python; the stream loop calls it."""

    def __init__(self, ocr: Any, stream_id: str, *, max_spans: int = 256) -> None:
        from encoder.text import SlideTracker

        self._tracker = SlideTracker(ocr, stream_id)
        self._spans: deque[tuple[float, str]] = deque(maxlen=max_spans)  # (start pts, text), in time order

    def observe(self, frames: Sequence[Frame]) -> None:
        for frame in frames:
            self._tracker.observe(frame.rgb, frame.pts_s, frame.wall_time_s)
            showing = self._tracker.showing
            if showing is not None and (not self._spans or self._spans[-1][0] != showing[0]):
                self._spans.append(showing)

    def attach(self, event: Event) -> Event:
        """The event with the text shown during [start, end] appended to its own text."""
        texts = [text for text in self._shown_between(event.start_pts_s, event.end_pts_s) if text]
        if not texts:
            return event
        joined = "\n".join(dict.fromkeys(texts))  # each distinct text once, in order
        return dataclasses.replace(event, text=f"{event.text}\n{joined}".strip())

    def _shown_between(self, start_s: float, end_s: float) -> list[str]:
        spans = list(self._spans)
        shown = []
        for i, (span_start, text) in enumerate(spans):
            span_end = spans[i + 1][0] if i + 1 < len(spans) else float("inf")
            if span_start <= end_s and span_end > start_s:
                shown.append(text)
        return shown
