"""The text side of the server: one MiniLM embedder and one text index (`<data_dir>/text`, OCR and
speech chunks) shared by video jobs (writers, through `vidsight.recorded.ingest_recorded`), hybrid
search (reader: `memory.hybrid.hybrid_search` fuses it with the visual bank's hits) and the alert
engine (passage embeddings). At ask time it gives the prompt the scope's slide text and transcript
(memory.hybrid.lecture_context) and weighs narrated events up in the token budget
(encoder.text.budget.event_weights). The index has no lock of its own; every call goes through
one here."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from memory import Hit

from .questions import Scope

TEXT_INDEX_DIR = "text"  # the same folder `vidsight ingest` writes (vidsight.recorded.TEXT_INDEX_DIR)


def open_text_store(settings: Any) -> TextStore | None:
    """The text channels' index under `settings.data_dir` when `vidsight ingest` wrote one (and the
    text extras are installed), for the CLI's search and ask; None: visual only."""
    import sys

    if not (Path(settings.data_dir) / TEXT_INDEX_DIR).is_dir():
        return None
    try:
        return TextStore(settings.text, Path(settings.data_dir), extract_in_jobs=False)
    except ImportError as exc:
        print(f"vidsight: text channels skipped ({exc}); visual only", file=sys.stderr)
        return None


class LockedIndex:
    """A TextIndex whose every method runs under one lock (jobs add while searches read)."""

    def __init__(self, index: Any) -> None:
        self._index = index
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._index, name)
        if not callable(attribute):
            return attribute

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return locked

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)


@dataclass
class JobText:
    """What `ingest_recorded` needs for one video (the shape of vidsight.recorded.TextChannels): a
    fresh extractor (its own ASR workers) over the shared embedder and index."""

    extractor: Any
    index: Any
    thumbnails_dir: Path

    def close(self) -> None:
        self.extractor.close()


class TextStore:
    def __init__(self, text_settings: Any, data_dir: Path, *, extract_in_jobs: bool) -> None:
        from encoder.text import TextEmbedder
        from memory.text_index import TextIndex

        self.settings = text_settings  # encoder.text.TextSettings
        self.extract_in_jobs = extract_in_jobs
        self.folder = Path(data_dir) / TEXT_INDEX_DIR
        self.embedder = TextEmbedder(text_settings.index)
        self.index = LockedIndex(TextIndex(self.folder, self.embedder.dim))
        self._ocr: Any = None

    def shared_ocr(self) -> Any:
        """One OCR model for every live stream's screen text (it loads on first use)."""
        if self._ocr is None:
            from encoder.text import SlideOCR

            self._ocr = SlideOCR(self.settings.ocr)
        return self._ocr

    def for_job(self) -> JobText | None:
        if not self.extract_in_jobs:
            return None
        from encoder.text import TextExtractor

        extractor = TextExtractor(self.settings, embedder=self.embedder)
        return JobText(extractor, self.index, self.folder / "slides")

    def search(
        self, query: str, visual_hits: Sequence[Hit], scope: Scope, k: int, channels: Sequence[str] | None
    ) -> list[Hit]:
        """Hybrid search (a `questions.TextSearch`)."""
        from memory.hybrid import hybrid_search
        from memory.text_index import TextIndex

        if len(self.index) == 0 and (channels is None or "visual" in channels):
            return list(visual_hits)[:k]  # nothing to fuse: keep the visual scores (cosines)
        streams = scope.streams
        one = streams[0] if streams and len(streams) == 1 else None
        hits = hybrid_search(
            cast(TextIndex, self.index),  # the same calls, each under the lock
            query,
            self.embedder.encode([query])[0],
            self.settings.search,
            visual_hits=visual_hits,
            channels=channels,
            stream_id=one,
            start_s=scope.since,
            end_s=scope.until,
            k=k if not streams or one else k * 4,
        )
        if streams and not one:
            hits = [h for h in hits if h.stream_id in streams][:k]
        return hits

    def prompt_text(
        self, question: str, stream_ids: Sequence[str], since: float | None, until: float | None
    ) -> str:
        """The slide text and transcript of the scope that bear on `question`, one line per piece
        with its time range ('' where the streams have none). Split evenly between the streams."""
        from memory.hybrid import format_context, lecture_context
        from memory.text_index import TextIndex

        budget = self.settings.search.prompt_text_chars
        if budget <= 0 or not stream_ids or len(self.index) == 0:
            return ""
        vector = self.embedder.encode([question])[0]
        parts = []
        for stream_id in stream_ids:
            evidence = lecture_context(
                cast(TextIndex, self.index),
                question,
                vector,
                self.settings.search,
                stream_id=stream_id,
                start_s=since,
                end_s=until,
                max_chars=budget // len(stream_ids),
            )
            if evidence:
                prefix = f"{stream_id}:\n" if len(stream_ids) > 1 else ""
                parts.append(prefix + format_context(evidence))
        return "\n".join(parts)

    def speech_weights(self, events: Sequence[Any]) -> list[float] | None:
        """Audio-guided budget weights, one per event (OmniZip-style: narrated events get a larger
        share of the visual tokens), from the speech chunks of the events' streams; None when none
        of them has speech (nothing to guide by)."""
        from encoder.text import SpeechSpan, event_weights

        if len(self.index) == 0 or not events:
            return None
        spans: dict[str, list[SpeechSpan]] = {}
        for stream_id in {e.stream_id for e in events}:
            chunks = self.index.chunks_in(stream_id=stream_id, channels=["speech"])
            spans[stream_id] = [SpeechSpan(c.start_pts_s, c.end_pts_s) for c in chunks]
        if not any(spans.values()):
            return None
        weights: list[float] = []
        for e in events:
            weights += event_weights([(e.start_pts_s, e.end_pts_s)], spans[e.stream_id], self.settings.budget)
        return weights
