"""Records that leave the text channels: OCR lines and slides, speech words and segments, text chunks,
and per-channel reports that say in words what each channel found."""

from __future__ import annotations

from dataclasses import dataclass, field

CHANNELS_TEXT = ("ocr", "speech")


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of on-screen text. `box` is its four corners in the source frame's pixels."""

    text: str
    confidence: float
    box: tuple[tuple[float, float], ...]  # 4 x (x, y), clockwise from top-left


@dataclass(frozen=True, slots=True)
class SlideRead:
    """What one slide (a stretch of unchanged screen) says, read once at its first frame.

    end_pts_s is where the next different slide starts (or the stream ended).
    """

    stream_id: str
    start_pts_s: float
    end_pts_s: float
    lines: tuple[TextLine, ...]
    start_wall_s: float | None = None
    end_wall_s: float | None = None
    thumbnail_path: str | None = None
    note: str = ""  # e.g. "downscaled 4000x3000 -> 1280x960 before OCR"

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def has_text(self) -> bool:
        return bool(self.lines)


@dataclass(frozen=True, slots=True)
class SpeechSpan:
    """A stretch of audio that voice activity detection marked as speech (stream seconds)."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start_s: float
    end_s: float
    confidence: float | None = None  # posterior in [0, 1] where the backend gives one


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    """The words recognised in one speech span."""

    start_s: float
    end_s: float
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A piece of transcript or slide text over a time range of one stream: the unit the text index
    stores. chunk_id is derived from its place, so ingesting the same video twice adds nothing new."""

    stream_id: str
    channel: str  # "ocr" | "speech"
    start_pts_s: float
    end_pts_s: float
    text: str
    event_id: str | None = None
    start_wall_s: float | None = None
    end_wall_s: float | None = None
    thumbnail_path: str | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS_TEXT:
            raise ValueError(f"TextChunk.channel must be one of {CHANNELS_TEXT}, got {self.channel!r}")
        if self.end_pts_s < self.start_pts_s:
            raise ValueError(f"TextChunk ends before it starts: {self.start_pts_s} > {self.end_pts_s}")

    @property
    def chunk_id(self) -> str:
        return f"{self.stream_id}/{self.channel}/{self.start_pts_s:.3f}-{self.end_pts_s:.3f}"


@dataclass(frozen=True, slots=True)
class ChannelReport:
    """What one channel found, for logs, job progress and the API.

    status: "found" (it produced text), "empty" (it ran and found nothing, e.g. silent audio or
    slides without text), "absent" (its input is missing, e.g. no audio stream), "disabled".
    """

    channel: str
    status: str
    detail: str
    counts: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        warn = "".join(f"; warning: {w}" for w in self.warnings)
        return f"{self.channel}: {self.status}: {self.detail}{warn}"


@dataclass(frozen=True, slots=True)
class Transcript:
    """Speech found in one audio track: where voice activity was, what was said, and a report."""

    spans: tuple[SpeechSpan, ...]
    segments: tuple[SpeechSegment, ...]
    report: ChannelReport

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.words)
