"""Chunks: one per slide with text; speech words grouped without crossing slide or event boundaries."""

from __future__ import annotations

from encoder.text.chunking import EventSpan, slide_chunks, speech_chunks, text_by_event
from encoder.text.config import IndexSettings
from encoder.text.records import SlideRead, SpeechSegment, TextLine, Word


def _words(start_s: float, count: int, step_s: float = 0.5) -> tuple[Word, ...]:
    return tuple(
        Word(f"w{start_s + i * step_s:g}", start_s + i * step_s, start_s + i * step_s + 0.4)
        for i in range(count)
    )


def test_speech_chunks_never_cross_a_boundary():
    segments = [SpeechSegment(0.0, 30.0, _words(0.0, 60))]  # one long utterance over a cut at 10 s
    chunks = speech_chunks(
        segments, "s", IndexSettings(chunk_max_s=60, chunk_max_words=1000), boundaries_s=[10.0]
    )
    assert len(chunks) == 2
    assert chunks[0].end_pts_s <= 10.2 and chunks[1].start_pts_s >= 10.0
    assert all(c.channel == "speech" for c in chunks)


def test_speech_chunks_respect_their_size_limits():
    segments = [SpeechSegment(0.0, 100.0, _words(0.0, 200))]
    by_words = speech_chunks(segments, "s", IndexSettings(chunk_max_s=600, chunk_max_words=25))
    assert len(by_words) == 8 and all(len(c.text.split()) <= 25 for c in by_words)
    by_time = speech_chunks(segments, "s", IndexSettings(chunk_max_s=20, chunk_max_words=2000))
    assert all(c.end_pts_s - c.start_pts_s <= 20 for c in by_time)


def test_chunks_name_the_event_they_overlap_most():
    events = [EventSpan("e1", 0.0, 12.0), EventSpan("e2", 12.0, 40.0)]
    slide = SlideRead("s", 10.0, 40.0, (TextLine("Title", 0.99, ((0, 0), (1, 0), (1, 1), (0, 1))),))
    blank = SlideRead("s", 40.0, 50.0, ())
    ocr = slide_chunks([slide, blank], events)
    assert len(ocr) == 1 and ocr[0].event_id == "e2" and ocr[0].text == "Title"
    speech = speech_chunks([SpeechSegment(0.0, 20.0, _words(0.0, 40))], "s", IndexSettings(), events=events)
    assert [c.event_id for c in speech] == ["e1", "e2"]
    assert text_by_event([*ocr, *speech]) == {"e1": speech[0].text, "e2": "Title\n" + speech[1].text}
