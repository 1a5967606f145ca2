"""Hybrid search over real MiniLM embeddings of slide text and narration, with visual hits fused in."""

from __future__ import annotations

import pytest

from encoder.text.records import TextChunk
from memory.hybrid import format_context, highlight, hybrid_search, lecture_context
from memory.records import Hit
from memory.text_index import TextIndex, TextIndexError
from vidsight.synth.lecture import TOPICS

SLIDE_S = 30.0
TOPIC_IDS = list(range(8))  # eight slides, 30 s each


def _slide_range(i: int) -> tuple[float, float]:
    return i * SLIDE_S, (i + 1) * SLIDE_S


@pytest.fixture(scope="module")
def lecture_index(tmp_path_factory, embedder):
    """Slide text as OCR chunks over each whole slide, narration as speech chunks inside it."""
    chunks = []
    for slot, topic_id in enumerate(TOPIC_IDS):
        t = TOPICS[topic_id]
        start, end = _slide_range(slot)
        chunks.append(
            TextChunk(
                "lec", "ocr", start, end, "\n".join([t.title, *t.bullets]), thumbnail_path=f"{slot}.jpg"
            )
        )
        chunks.append(TextChunk("lec", "speech", start + 1.5, start + 18.0, t.narration.lower()))
    index = TextIndex(tmp_path_factory.mktemp("hybrid"), embedder.dim)
    index.add(chunks, embedder.encode([c.text for c in chunks]))
    return index


def _top(index, embedder, settings, query, **kw):
    return hybrid_search(index, query, embedder.encode([query])[0], settings.search, **kw)


@pytest.mark.parametrize("slot", range(len(TOPIC_IDS)))
def test_a_text_only_query_ranks_its_slide_first(lecture_index, embedder, settings, slot):
    hits = _top(lecture_index, embedder, settings, TOPICS[TOPIC_IDS[slot]].text_query)
    start, end = _slide_range(slot)
    assert (hits[0].start_pts_s, hits[0].end_pts_s) == (start, end)
    assert hits[0].channel in ("ocr", "fused")
    assert hits[0].thumbnail_path == f"{slot}.jpg"


@pytest.mark.parametrize("slot", range(len(TOPIC_IDS)))
def test_a_speech_only_query_ranks_its_slide_first(lecture_index, embedder, settings, slot):
    hits = _top(lecture_index, embedder, settings, TOPICS[TOPIC_IDS[slot]].speech_query)
    start, end = _slide_range(slot)
    assert start <= hits[0].start_pts_s and hits[0].end_pts_s <= end  # the slide (fused) or its speech
    assert hits[0].channel in ("speech", "fused")


def test_channel_filter_returns_only_that_channel(lecture_index, embedder, settings):
    query = TOPICS[TOPIC_IDS[1]].speech_query
    speech = _top(lecture_index, embedder, settings, query, channels=["speech"])
    assert speech and all(h.channel == "speech" for h in speech)
    assert speech[0].start_pts_s == pytest.approx(SLIDE_S + 1.5)
    assert "**" in speech[0].snippet  # matched words marked
    ocr = _top(lecture_index, embedder, settings, query, channels=["ocr"])
    assert all(h.channel == "ocr" for h in ocr)
    with pytest.raises(TextIndexError, match="visual"):
        _top(lecture_index, embedder, settings, query, channels=["audio"])


def test_agreeing_channels_outrank_one_channel_and_neighbours_stay_apart(lecture_index, embedder, settings):
    """A visual hit over slide 3 joins slide 3's range; one over slide 5 alone ranks below it."""
    t = TOPICS[TOPIC_IDS[3]]
    visual = [
        Hit(
            "ev-5",
            "lec",
            5 * SLIDE_S + 2,
            5 * SLIDE_S + 20,
            None,
            None,
            0.31,
            "visual",
            thumbnail_path="v5.jpg",
        ),
        Hit(
            "ev-3",
            "lec",
            3 * SLIDE_S + 5,
            3 * SLIDE_S + 25,
            None,
            None,
            0.30,
            "visual",
            thumbnail_path="v3.jpg",
        ),
    ]
    hits = _top(lecture_index, embedder, settings, t.text_query, visual_hits=visual)
    assert hits[0].channel == "fused" and hits[0].event_id == "ev-3"
    assert (hits[0].start_pts_s, hits[0].end_pts_s) == _slide_range(3)
    assert 0 < hits[0].score <= 1
    v5 = next(h for h in hits if h.event_id == "ev-5")
    assert v5.channel == "visual" and v5.score < hits[0].score and v5.thumbnail_path == "v5.jpg"
    only_visual = _top(
        lecture_index, embedder, settings, t.text_query, visual_hits=visual, channels=["visual"]
    )
    assert [h.event_id for h in only_visual] == ["ev-5", "ev-3"]


def test_a_long_visual_event_fused_with_a_slide_keeps_the_slide_range(lecture_index, embedder, settings):
    """An event spanning slides 2-4 (the segmenter found no cut) matches with slide 3's text: the
    result points at slide 3, not at the whole event."""
    t = TOPICS[TOPIC_IDS[3]]
    visual = [Hit("ev-long", "lec", 2 * SLIDE_S, 5 * SLIDE_S, None, None, 0.4, "visual")]
    hits = _top(lecture_index, embedder, settings, t.text_query, visual_hits=visual)
    assert hits[0].channel == "fused" and hits[0].event_id == "ev-long"
    assert (hits[0].start_pts_s, hits[0].end_pts_s) == _slide_range(3)


def test_scope_limits_results_to_the_stream_and_time(lecture_index, embedder, settings):
    everywhere = _top(lecture_index, embedder, settings, "rock and energy")
    assert any(h.start_pts_s >= 120.0 or h.end_pts_s <= 60.0 for h in everywhere)
    hits = _top(lecture_index, embedder, settings, "rock and energy", start_s=60.0, end_s=120.0)
    assert hits and all(h.end_pts_s > 60.0 and h.start_pts_s < 120.0 for h in hits)
    assert _top(lecture_index, embedder, settings, "rock and energy", stream_id="elsewhere") == []


def test_lecture_context_is_the_scope_in_time_order(lecture_index, embedder, settings):
    question = "what makes the tides rise?"
    start, end = _slide_range(1)
    evidence = lecture_context(
        lecture_index,
        question,
        embedder.encode([question])[0],
        settings.search,
        stream_id="lec",
        start_s=start,
        end_s=end,
    )
    assert [e.channel for e in evidence] == ["ocr", "speech"]
    assert TOPICS[TOPIC_IDS[1]].title in evidence[0].text
    text = format_context(evidence)
    assert text.splitlines()[0].startswith("[00:30-01:00] slide: Ocean Tides")
    assert text.splitlines()[1].startswith("[00:31-00:48] speech: twice a day")


def test_lecture_context_spends_a_small_budget_on_the_most_relevant_text(lecture_index, embedder, settings):
    question = TOPICS[TOPIC_IDS[6]].speech_query
    evidence = lecture_context(
        lecture_index,
        question,
        embedder.encode([question])[0],
        settings.search,
        stream_id="lec",
        max_chars=400,
    )
    assert 0 < sum(len(e.text) for e in evidence) <= 400
    assert any(6 * SLIDE_S <= e.start_pts_s < 7 * SLIDE_S for e in evidence)
    assert [e.start_pts_s for e in evidence] == sorted(e.start_pts_s for e in evidence)


def test_highlight_marks_matched_words_in_a_window():
    text = (
        " ".join(f"w{i}" for i in range(100))
        + " Schrödinger equation "
        + " ".join(f"v{i}" for i in range(50))
    )
    snippet = highlight(text, {"schrödinger"}, 12)
    assert "**Schrödinger**" in snippet and snippet.startswith("... ") and snippet.endswith(" ...")
    assert len(snippet.replace("... ", "").replace(" ...", "").split()) == 12
