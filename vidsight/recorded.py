"""A recorded video end to end: frames become events (visual channel), slides and speech become
text chunks (OCR and speech channels), and both land in memory.

Speech recognition starts in worker processes before the first frame is decoded and slides are
read as the sampled frames go by, so the text channels overlap the visual pipeline. Events are
held until the transcript is done, because each event's `text` (its slide text and speech, used
by alerts and the LLM) is only known then; a recorded video becomes searchable when its job ends.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compressor import Event
from ingest.config import IngestSettings
from vidsight.processing import StreamProcessor, StreamReport

log = logging.getLogger(__name__)

TEXT_INDEX_DIR = "text"  # under the data dir: the OCR/speech index that hybrid search reads


class TextChannels:
    """The offline text models (OCR, VAD, ASR, MiniLM) and the text index, opened once."""

    def __init__(self, settings: Any, data_dir: str | Path) -> None:
        from encoder.text import TextExtractor
        from memory.text_index import TextIndex

        self.settings = settings
        self.extractor = TextExtractor(settings)
        self.index = TextIndex(Path(data_dir) / TEXT_INDEX_DIR, self.extractor.embedder.dim)
        self.thumbnails_dir = Path(data_dir) / TEXT_INDEX_DIR / "slides"

    def close(self) -> None:
        self.extractor.close()


@dataclass(slots=True)
class RecordedReport:
    """What one recorded video gave: the visual report, the text channels' reports, and counts."""

    report: StreamReport
    events: list[Event] = field(default_factory=list, repr=False)
    text_reports: list[dict[str, Any]] = field(default_factory=list)
    text_chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.report.to_dict(), "text_chunks": self.text_chunks, "text_channels": self.text_reports}


def ingest_recorded(
    path: str | Path,
    processor: StreamProcessor,
    settings: IngestSettings,
    *,
    text: TextChannels | None = None,
    sink: Callable[[Event], Any] | None = None,
    executor: str = "auto",
    on_event: Callable[[Event], None] | None = None,
) -> RecordedReport:
    """Decode, encode and compress `path`; read its slides and speech; attach each event's text;
    add the text chunks to the text index and hand every event to `sink` (e.g. MemoryBank.add).

    on_event sees each event as it closes (progress); sink sees it once its text is attached.
    """
    from vidsight.pipeline import process_file

    reading = None
    if text is not None:
        reading = text.extractor.begin(
            path, stream_id=processor.stream_id, thumbnails_dir=text.thumbnails_dir
        )
    events: list[Event] = []

    def closed(event: Event) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    report = process_file(
        path,
        processor,
        settings,
        executor=executor,
        on_event=closed,
        on_frame=None if reading is None else reading.observe,
    )
    out = RecordedReport(report)
    if reading is not None and text is not None:
        events = _attach_text(reading, text, events, out)
    for event in events:
        if sink is not None:
            sink(event)
    out.events = events
    return out


def _attach_text(reading: Any, text: TextChannels, events: list[Event], out: RecordedReport) -> list[Event]:
    from encoder.text import text_by_event

    extraction = reading.finish(events)
    if extraction.chunks:
        text.index.add(list(extraction.chunks), extraction.vectors)
    out.text_chunks = len(extraction.chunks)
    out.text_reports = [
        {"channel": r.channel, "status": r.status, "detail": r.detail} for r in extraction.reports
    ]
    by_event = text_by_event(extraction.chunks)
    return [
        dataclasses.replace(e, text=by_event[e.event_id]) if e.event_id in by_event else e for e in events
    ]
