"""Everything the text channels read from one recorded video: slides, transcript, chunks and their
embeddings, with a report per channel.

Speech recognition runs in worker processes while this process decodes frames and reads slides,
so the two heavy parts overlap. Speech chunks are cut at slide changes (and event cuts), so every
chunk lies inside one slide.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .chunking import TimedEvent, slide_chunks, speech_chunks
from .config import TextSettings
from .embed import TextEmbedder
from .ocr import SlideOCR, SlideTracker, ocr_report
from .records import ChannelReport, SlideRead, TextChunk, Transcript
from .speech import Transcriber

if TYPE_CHECKING:
    from ingest import Frame
    from ingest.audio import AudioTrack


@dataclass(frozen=True, slots=True, repr=False)
class TextExtraction:
    stream_id: str
    duration_s: float
    slides: tuple[SlideRead, ...]
    transcript: Transcript
    chunks: tuple[TextChunk, ...]
    vectors: np.ndarray  # [len(chunks), D] float32, unit rows
    reports: tuple[ChannelReport, ...]
    timings_s: dict[str, float] = field(default_factory=dict)
    speech_spans_s: tuple[tuple[float, float], ...] = ()

    def report(self, channel: str) -> ChannelReport:
        return next(r for r in self.reports if r.channel == channel)

    def __repr__(self) -> str:
        return (
            f"TextExtraction(stream_id={self.stream_id!r}, duration_s={self.duration_s:.1f}, "
            f"slides={len(self.slides)}, words={len(self.transcript.words)}, chunks={len(self.chunks)}, "
            f"vectors={list(self.vectors.shape)}, reports={[str(r) for r in self.reports]})"
        )


class TextExtractor:
    """Holds the OCR, VAD, ASR and embedding models; `close()` stops the ASR workers."""

    def __init__(
        self,
        settings: TextSettings,
        *,
        embedder: TextEmbedder | None = None,
        transcriber: Transcriber | None = None,
        ocr: SlideOCR | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder or TextEmbedder(settings.index)
        self.transcriber = transcriber or Transcriber(settings)
        self.ocr = ocr or SlideOCR(settings.ocr)

    def warmup(self) -> None:
        """Load every model and start the ASR workers (seconds, once per process)."""
        self.embedder.warmup()
        if self.settings.ocr.enabled:
            self.ocr.warmup()
        if self.settings.asr.enabled:
            self.transcriber.warmup()

    def begin(
        self, path: str | os.PathLike[str], *, stream_id: str, thumbnails_dir: str | Path | None = None
    ) -> FileTextRead:
        """Start reading one recorded video whose frames the caller decodes: speech recognition
        starts in the workers now; `observe` each sampled frame, then `finish(events)`."""
        return FileTextRead(self, path, stream_id=stream_id, thumbnails_dir=thumbnails_dir)

    def extract_file(
        self,
        path: str | os.PathLike[str],
        *,
        stream_id: str,
        frames: Iterable[Frame] | None = None,
        sample_fps: float = 2.0,
        decode_workers: int = 0,
        events: Sequence[TimedEvent] = (),
        thumbnails_dir: str | Path | None = None,
    ) -> TextExtraction:
        """Read a recorded video. frames: already decoded frames (e.g. event keyframes) instead of
        decoding here at sample_fps."""
        from ingest import OutputSize, decode_file

        reading = self.begin(path, stream_id=stream_id, thumbnails_dir=thumbnails_dir)
        if self.settings.ocr.enabled and frames is None:
            size = OutputSize(max_side_px=self.settings.ocr.max_side_px)
            frames = decode_file(path, fps=sample_fps, workers=decode_workers, size=size, stream_id=stream_id)
        reading.observe_all(frames or ())
        return reading.finish(events)

    def close(self) -> None:
        self.transcriber.close()

    def __enter__(self) -> TextExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def media_duration_s(path: str | os.PathLike[str]) -> float:
    """The container's duration (0.0 when it does not say)."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            return float(container.duration or 0) / 1_000_000
    except (av.error.FFmpegError, OSError):
        return 0.0


def _no_audio(note: str) -> AudioTrack:
    from ingest.audio import AudioTrack

    return AudioTrack(np.zeros(0, np.float32), 16_000, note=note)


class FileTextRead:
    """One recorded video being read: ASR runs in worker processes while the caller decodes
    frames and hands them to `observe` (slides are read as they change)."""

    def __init__(
        self,
        extractor: TextExtractor,
        path: str | os.PathLike[str],
        *,
        stream_id: str,
        thumbnails_dir: str | Path | None = None,
    ) -> None:
        from ingest.audio import read_audio

        self.extractor = extractor
        self.stream_id = stream_id
        settings = extractor.settings
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        audio = read_audio(path) if settings.asr.enabled else _no_audio("speech recognition is disabled")
        self._pending = extractor.transcriber.start(audio)
        self.timings["audio_vad_s"] = time.perf_counter() - t0
        self.duration_s = max(media_duration_s(path), audio.end_s)
        self._tracker = (
            SlideTracker(extractor.ocr, stream_id, thumbnails_dir=thumbnails_dir)
            if settings.ocr.enabled
            else None
        )
        self._slides: list[SlideRead] = []
        self._ocr_s = 0.0
        self.ocr_absent = ""

    def observe(self, frame: Frame) -> None:
        """One sampled frame, in time order (cheap unless the slide changed)."""
        if self._tracker is None:
            return
        t = time.perf_counter()
        self._slides += self._tracker.observe(frame.rgb, frame.pts_s, frame.wall_time_s)
        self._ocr_s += time.perf_counter() - t

    def observe_all(self, frames: Iterable[Frame]) -> None:
        from ingest.errors import NotVideoError

        try:
            for frame in frames:
                self.observe(frame)
        except NotVideoError as exc:
            self.ocr_absent = str(exc)

    def finish(self, events: Sequence[TimedEvent] = ()) -> TextExtraction:
        """Wait for the transcript, chunk both channels by slide and event, embed the chunks."""
        if self._tracker is not None:
            self._slides += self._tracker.finish(self.duration_s)
            self.timings["decode_ocr_s"] = self._ocr_s
        t = time.perf_counter()
        transcript = self._pending.result()
        self.timings["asr_wait_s"] = time.perf_counter() - t
        return assemble_extraction(
            self.extractor.embedder,
            self.extractor.settings,
            self.stream_id,
            self.duration_s,
            self._slides,
            self._tracker,
            transcript,
            events,
            self.timings,
            self.ocr_absent,
        )


def assemble_extraction(
    embedder: TextEmbedder,
    settings: TextSettings,
    stream_id: str,
    duration_s: float,
    slides: list[SlideRead],
    tracker: object,
    transcript: Transcript,
    events: Sequence[TimedEvent],
    timings: dict[str, float],
    ocr_absent: str,
) -> TextExtraction:
    """Chunk slides and speech by slide change and event, embed the chunks, report per channel."""
    t3 = time.perf_counter()
    boundaries = [s.start_pts_s for s in slides[1:]]
    chunks = slide_chunks(slides, events) + speech_chunks(
        transcript.segments, stream_id, settings.index, boundaries_s=boundaries, events=events
    )
    vectors = embedder.encode([c.text for c in chunks])
    timings["chunk_embed_s"] = time.perf_counter() - t3
    if ocr_absent:
        ocr = ChannelReport("ocr", "absent", ocr_absent)
    else:
        ocr = ocr_report(slides, tracker, enabled=settings.ocr.enabled)  # type: ignore[arg-type]
    return TextExtraction(
        stream_id=stream_id,
        duration_s=duration_s,
        slides=tuple(slides),
        transcript=transcript,
        chunks=tuple(chunks),
        vectors=vectors,
        reports=(ocr, transcript.report),
        timings_s={k: round(v, 3) for k, v in timings.items()},
        speech_spans_s=tuple((s.start_s, s.end_s) for s in transcript.spans),
    )
