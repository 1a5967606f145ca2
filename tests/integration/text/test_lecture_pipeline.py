"""A generated lecture through decode, OCR, VAD, ASR (worker pool), embeddings, the text index and
hybrid search; and the bad inputs: no audio, no text, silent audio, non-English speech."""

from __future__ import annotations

import pytest

from encoder.text import TextExtractor, TextSettings
from memory.hybrid import hybrid_search
from memory.text_index import TextIndex, tokenize

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _index(tmp_path, extraction):
    index = TextIndex(tmp_path / "text", extraction.vectors.shape[1])
    index.add(extraction.chunks, extraction.vectors)
    return index


def _slide_of(lecture, hit):
    overlaps = [
        (min(hit.end_pts_s, s.end_s) - max(hit.start_pts_s, s.start_s), s.index) for s in lecture.slides
    ]
    return max(overlaps)[1]


def test_every_slide_is_found_where_it_was_shown(lectures, main_extraction):
    lecture = lectures["main"]
    assert len(main_extraction.slides) == len(lecture.slides)
    for read, truth in zip(main_extraction.slides, lecture.slides, strict=True):
        assert abs(read.start_pts_s - truth.start_s) <= 0.6  # sampled at 2 fps
        assert truth.title in read.text
        assert read.thumbnail_path is None
    ocr, speech = main_extraction.reports
    assert (ocr.status, speech.status) == ("found", "found"), main_extraction.reports


def test_transcript_words_are_placed_on_the_video_timeline(lectures, main_extraction):
    truth = {w.text.lower(): w.start_s for s in lectures["main"].slides for w in s.words}
    placed = [w for w in main_extraction.transcript.words if w.text in truth and len(w.text) > 4]
    assert len(placed) >= 20
    within = [abs(w.start_s - truth[w.text]) < 1.0 for w in placed]
    assert sum(within) / len(within) >= 0.9


def test_speech_chunks_stay_inside_their_slide(lectures, main_extraction):
    slides = lectures["main"].slides
    for chunk in (c for c in main_extraction.chunks if c.channel == "speech"):
        assert any(s.start_s - 0.6 <= chunk.start_pts_s and chunk.end_pts_s <= s.end_s + 0.6 for s in slides)


def test_hybrid_search_puts_the_right_slide_first_for_text_and_speech_queries(
    lectures, main_extraction, extractor, tmp_path
):
    lecture = lectures["main"]
    index = _index(tmp_path, main_extraction)
    settings = extractor.settings.search
    for slide in lecture.slides:
        for query in (slide.text_query, slide.speech_query):
            hits = hybrid_search(index, query, extractor.embedder.encode([query])[0], settings)
            assert hits and _slide_of(lecture, hits[0]) == slide.index, (query, hits[:2])


def test_worker_pool_transcribes_exactly_like_one_process(lectures, main_extraction):
    single = TextSettings.model_validate({"asr": {"workers": 1}, "ocr": {"enabled": False}})
    with TextExtractor(single) as ex:
        alone = ex.extract_file(lectures["main"].path, stream_id="lecture")
    pooled = main_extraction.transcript.segments
    assert [(s.start_s, s.end_s) for s in alone.transcript.segments] == [(s.start_s, s.end_s) for s in pooled]
    assert [(w.text, w.start_s, w.end_s) for w in alone.transcript.words] == [
        (w.text, w.start_s, w.end_s) for w in main_extraction.transcript.words
    ]
    # Posteriors are float sums whose order differs between processes: a value at a rounding
    # boundary may land one step (1e-4) away; anything more is a different decode.
    for a, b in zip(alone.transcript.words, main_extraction.transcript.words, strict=True):
        assert a.confidence == pytest.approx(b.confidence, abs=2e-4)


def test_a_video_without_audio_is_searchable_by_its_slides(lectures, extractor, tmp_path):
    lecture = lectures["no_audio"]
    extraction = extractor.extract_file(lecture.path, stream_id="mute")
    ocr, speech = extraction.reports
    assert ocr.status == "found"
    assert speech.status == "absent" and "no audio stream" in speech.detail
    index = _index(tmp_path, extraction)
    query = lecture.slides[1].text_query
    hits = hybrid_search(index, query, extractor.embedder.encode([query])[0], extractor.settings.search)
    assert _slide_of(lecture, hits[0]) == 1 and hits[0].channel == "ocr"


def test_slides_without_text_are_reported_and_speech_still_finds_them(lectures, extractor, tmp_path):
    lecture = lectures["no_text"]
    extraction = extractor.extract_file(lecture.path, stream_id="pictures")
    ocr, speech = extraction.reports
    assert ocr.status == "empty" and "none has text" in ocr.detail
    assert speech.status == "found"
    assert all(c.channel == "speech" for c in extraction.chunks)
    query = lecture.slides[0].speech_query
    hits = hybrid_search(
        _index(tmp_path, extraction), query, extractor.embedder.encode([query])[0], extractor.settings.search
    )
    assert _slide_of(lecture, hits[0]) == 0 and hits[0].channel == "speech"


def test_silent_audio_is_reported_as_no_speech(lectures, extractor):
    extraction = extractor.extract_file(lectures["silent_audio"], stream_id="quiet")
    speech = extraction.report("speech")
    assert speech.status == "empty" and "no speech detected" in speech.detail
    assert extraction.transcript.segments == ()


def test_non_english_speech_is_transcribed_with_a_warning(lectures, extractor):
    extraction = extractor.extract_file(lectures["spanish"].path, stream_id="es")
    speech = extraction.report("speech")
    assert speech.status == "found" and any("not in 'en'" in w for w in speech.warnings)
    assert extraction.report("ocr").status == "found"


def test_the_index_answers_the_same_after_reopening(main_extraction, extractor, tmp_path):
    index = _index(tmp_path, main_extraction)
    query = "why the sea rises"
    vector = extractor.embedder.encode([query])[0]
    before = hybrid_search(index, query, vector, extractor.settings.search)
    reopened = TextIndex(tmp_path / "text", main_extraction.vectors.shape[1])
    assert hybrid_search(reopened, query, vector, extractor.settings.search) == before
    assert set(tokenize("sea")) <= {t for c in main_extraction.chunks for t in tokenize(c.text)}


@pytest.mark.parametrize("channel", ["ocr", "speech"])
def test_disabled_channels_say_so(lectures, channel):
    settings = TextSettings.model_validate({channel if channel == "ocr" else "asr": {"enabled": False}})
    with TextExtractor(settings) as ex:
        extraction = ex.extract_file(lectures["no_audio"].path, stream_id="off")
    assert extraction.report(channel).status == "disabled"
