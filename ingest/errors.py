"""Ingest errors. Messages name the bad value and what was allowed."""

from __future__ import annotations


class IngestError(Exception):
    """Base class for everything ingest raises on purpose."""


class UnsupportedSourceError(IngestError):
    """The URI's scheme or form is not one we can open."""


class SourceOpenError(IngestError):
    """The source exists in form but could not be opened (missing, unreachable, not a video)."""


class NotVideoError(SourceOpenError):
    """The source opened but holds no video we can decode: retrying will not help."""


class CorruptMediaError(IngestError):
    """Decoding stopped early on damaged data. Frames before `position_s` were yielded."""

    def __init__(self, message: str, *, position_s: float | None, frames_yielded: int) -> None:
        super().__init__(message)
        self.position_s = position_s
        self.frames_yielded = frames_yielded


class StreamStalledError(IngestError):
    """A live source delivered no data (or no decodable frame) within its timeout."""
