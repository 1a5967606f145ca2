"""Generated lectures: the topic bank keeps channels apart; the MP4 has the slides and narration it says."""

from __future__ import annotations

import av
import pytest

from memory.text_index import KeywordIndex, tokenize
from vidsight.synth.lecture import TOPICS, Topic, cached_lecture, festival_available, generate_lecture


@pytest.mark.parametrize("topic", TOPICS, ids=[t.title for t in TOPICS])
def test_queries_use_only_their_own_channel_words(topic):
    slide = set(tokenize(" ".join([topic.title, *topic.bullets])))
    narration = set(tokenize(topic.narration))
    assert not set(tokenize(topic.speech_query)) & slide
    assert not set(tokenize(topic.text_query)) & narration
    assert set(tokenize(topic.text_query)) <= slide


def test_every_query_ranks_its_own_topic_first_by_keywords():
    index, owner = KeywordIndex(), []
    for t in TOPICS:
        index.add(" ".join([t.title, *t.bullets]))
        owner.append((t.title, "slide"))
        index.add(t.narration)
        owner.append((t.title, "speech"))
    for t in TOPICS:
        assert owner[index.search(t.text_query, 1)[0][0]] == (t.title, "slide")
        assert owner[index.search(t.speech_query, 1)[0][0]] == (t.title, "speech")


@pytest.fixture(scope="module")
def short_lecture(tmp_path_factory):
    if not festival_available():
        pytest.skip("festival with voice cmu_us_slt_arctic_hts is not installed")
    topics = [
        Topic("Alpha Topic", ("first point",), "A short sentence about the first subject.", "alpha", "short"),
        Topic("Beta Topic", ("second point",), "Another sentence for the second one.", "beta", "another"),
    ]
    root = tmp_path_factory.mktemp("lecture")
    return cached_lecture(root, 2, topics=topics, min_slide_s=4.0, max_slide_s=5.0, fps=2.0), root, topics


def test_generated_lecture_matches_its_ground_truth(short_lecture):
    lecture, _, _ = short_lecture
    first, second = lecture.slides
    assert first.start_s == 0.0 and first.end_s == second.start_s and second.end_s == lecture.duration_s
    for s in lecture.slides:
        assert s.start_s < s.narration_start_s < s.narration_end_s < s.end_s
        assert s.words and all(
            s.narration_start_s <= w.start_s < w.end_s <= s.narration_end_s + 0.05 for w in s.words
        )
    with av.open(str(lecture.path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        assert float(container.duration) / 1e6 == pytest.approx(lecture.duration_s, abs=0.6)


def test_a_cached_lecture_is_reused_not_regenerated(short_lecture):
    lecture, root, topics = short_lecture
    mtime = lecture.path.stat().st_mtime_ns
    again = cached_lecture(root, 2, topics=topics, min_slide_s=4.0, max_slide_s=5.0, fps=2.0)
    assert again == lecture and again.path.stat().st_mtime_ns == mtime


def test_a_lecture_without_narration_has_no_audio_track(tmp_path):
    lecture = generate_lecture(
        tmp_path / "mute.mp4", 1, narrate=False, min_slide_s=2.0, max_slide_s=2.0, fps=2.0
    )
    assert not lecture.has_audio and lecture.slides[0].narration == ""
    with av.open(str(lecture.path)) as container:
        assert not container.streams.audio
