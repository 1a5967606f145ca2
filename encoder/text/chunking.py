"""Text chunks for the index: one per slide, and transcript words grouped by time.

Speech chunks never cross a boundary (a slide change or an event cut), so every chunk belongs
to one slide/event and its time range says where it was said.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .config import IndexSettings
from .records import SlideRead, SpeechSegment, TextChunk, Word


class TimedEvent(Protocol):
    """Anything with an id and a time range: `compressor.Event`, or an `EventSpan`."""

    @property
    def event_id(self) -> str: ...

    @property
    def start_pts_s(self) -> float: ...

    @property
    def end_pts_s(self) -> float: ...


@dataclass(frozen=True, slots=True)
class EventSpan:
    """An event's time range, so chunks can name the event they belong to."""

    event_id: str
    start_pts_s: float
    end_pts_s: float


def text_by_event(chunks: Sequence[TextChunk]) -> dict[str, str]:
    """Slide text and transcript per event id, in time order (for `Event.text`)."""
    parts: dict[str, list[str]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.start_pts_s, c.channel)):
        if chunk.event_id is not None:
            parts.setdefault(chunk.event_id, []).append(chunk.text)
    return {event_id: "\n".join(texts) for event_id, texts in parts.items()}


def slide_chunks(slides: Sequence[SlideRead], events: Sequence[TimedEvent] = ()) -> list[TextChunk]:
    """One chunk per slide that has text, spanning the whole time the slide was shown."""
    return [
        TextChunk(
            stream_id=s.stream_id,
            channel="ocr",
            start_pts_s=s.start_pts_s,
            end_pts_s=s.end_pts_s,
            text=s.text,
            event_id=_event_of(events, s.start_pts_s, s.end_pts_s),
            start_wall_s=s.start_wall_s,
            end_wall_s=s.end_wall_s,
            thumbnail_path=s.thumbnail_path,
        )
        for s in slides
        if s.has_text
    ]


def speech_chunks(
    segments: Sequence[SpeechSegment],
    stream_id: str,
    settings: IndexSettings,
    *,
    boundaries_s: Sequence[float] = (),
    events: Sequence[TimedEvent] = (),
    wall_offset_s: float | None = None,
) -> list[TextChunk]:
    """Consecutive words grouped into chunks of at most chunk_max_s / chunk_max_words, cut at every
    boundary (a word belongs to the side its midpoint falls on).

    wall_offset_s: for live streams, wall time = pts + offset.
    """
    cuts = sorted(set(boundaries_s) | {e.start_pts_s for e in events})
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in (w for seg in segments for w in seg.words):
        if current and _starts_new_chunk(current, word, cuts, settings):
            groups.append(current)
            current = []
        current.append(word)
    if current:
        groups.append(current)
    chunks = []
    for words in groups:
        start, end = words[0].start_s, words[-1].end_s
        wall = (start + wall_offset_s, end + wall_offset_s) if wall_offset_s is not None else (None, None)
        chunks.append(
            TextChunk(
                stream_id=stream_id,
                channel="speech",
                start_pts_s=start,
                end_pts_s=end,
                text=" ".join(w.text for w in words),
                event_id=_event_of(events, start, end),
                start_wall_s=wall[0],
                end_wall_s=wall[1],
            )
        )
    return chunks


def _starts_new_chunk(
    current: list[Word], word: Word, cuts: Sequence[float], settings: IndexSettings
) -> bool:
    if len(current) >= settings.chunk_max_words:
        return True
    if word.end_s - current[0].start_s > settings.chunk_max_s:
        return True
    mid_prev = (current[-1].start_s + current[-1].end_s) / 2
    mid_next = (word.start_s + word.end_s) / 2
    # A cut strictly between the two midpoints separates them.
    return bisect.bisect_right(cuts, mid_prev) != bisect.bisect_right(cuts, mid_next)


def _event_of(events: Sequence[TimedEvent], start_s: float, end_s: float) -> str | None:
    """The event that overlaps [start_s, end_s] most."""
    best, best_overlap = None, 0.0
    for e in events:
        overlap = min(end_s, e.end_pts_s) - max(start_s, e.start_pts_s)
        if overlap > best_overlap or (best is None and overlap >= 0 and start_s == end_s):
            best, best_overlap = e.event_id, overlap
    return best
