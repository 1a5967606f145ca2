"""Speech recognition: pocketsphinx on Festival speech, live windows, and backend selection."""

from __future__ import annotations

import numpy as np
import pytest

from encoder.text import LiveTranscriber, ModelUnavailableError, TextSettings, Transcriber, make_recognizer
from ingest.audio import AudioTrack

KEYWORDS = ("sea", "rises", "falls", "coast", "sailors", "centuries", "harbor")


def test_asr_finds_spoken_keywords_within_one_second_of_when_they_were_said(spoken, recognizer):
    s = spoken["english"]
    offset_s = 12.0  # the span's place in the stream
    words = recognizer.transcribe(s.samples, offset_s)
    heard = {w.text: w for w in words}
    truth = {w.text.lower(): w for w in s.words}
    found = [k for k in KEYWORDS if k in heard]
    assert len(found) >= len(KEYWORDS) - 1, f"heard: {' '.join(w.text for w in words)}"
    for k in found:
        assert abs(heard[k].start_s - (offset_s + truth[k].start_s)) < 1.0, k


def test_words_do_not_depend_on_what_the_recognizer_decoded_before(spoken, recognizer):
    fresh = make_recognizer(TextSettings().asr)
    first = fresh.transcribe(spoken["english_2"].samples)
    recognizer.transcribe(spoken["english"].samples)  # a different utterance first
    assert recognizer.transcribe(spoken["english_2"].samples) == first


def test_live_transcriber_equals_the_offline_transcript(spoken, settings, recognizer):
    gap = np.zeros(16_000, np.float32)
    audio = np.concatenate([gap, spoken["english"].samples, gap, spoken["english_2"].samples, gap])
    offline = Transcriber(settings, recognizer=recognizer).transcribe(AudioTrack(audio, 16_000, start_s=5.0))
    live = LiveTranscriber(settings, recognizer=recognizer)
    segments = []
    for i in range(0, audio.size, 3_200):  # 200 ms chunks, as a stream delivers them
        segments += live.push(audio[i : i + 3_200], start_s=5.0 if i == 0 else None)
        assert live.buffered_s <= settings.vad.max_segment_s + 3.0
    segments += live.finish()
    assert [(s.start_s, s.end_s, s.text) for s in segments] == [
        (s.start_s, s.end_s, s.text) for s in offline.segments
    ]
    assert offline.report.status == "found"


def test_a_gap_in_a_live_stream_closes_the_open_speech_and_restarts_the_clock(spoken, settings, recognizer):
    speech = spoken["english_2"].samples
    live = LiveTranscriber(settings, recognizer=recognizer)
    before_gap = live.push(speech[: speech.size // 2], start_s=100.0)
    at_gap = live.push(speech[speech.size // 2 :], start_s=200.0)  # 100 s of audio never arrived
    after = live.finish()
    assert before_gap == []
    assert at_gap and at_gap[0].end_s <= 100.0 + speech.size / 2 / 16_000 + 0.2
    assert after and all(s.start_s >= 200.0 for s in after)


def test_non_english_speech_is_reported_as_doubtful_and_english_is_not(spoken, settings, recognizer):
    transcriber = Transcriber(settings, recognizer=recognizer)
    spanish = transcriber.transcribe(AudioTrack(spoken["spanish"].samples, 16_000)).report
    english = transcriber.transcribe(AudioTrack(spoken["english"].samples, 16_000)).report
    assert spanish.status == "found" and any("not in 'en'" in w for w in spanish.warnings)
    assert english.status == "found" and not english.warnings


def test_silent_audio_is_reported_as_no_speech(settings, recognizer):
    report = (
        Transcriber(settings, recognizer=recognizer)
        .transcribe(AudioTrack(np.zeros(16_000 * 2, np.float32), 16_000))
        .report
    )
    assert report.status == "empty" and "no speech detected" in report.detail


def test_missing_audio_is_reported_as_absent(settings, recognizer):
    track = AudioTrack(np.zeros(0, np.float32), 16_000, note="no audio stream in x.mp4 (it holds: video)")
    report = Transcriber(settings, recognizer=recognizer).transcribe(track).report
    assert report.status == "absent" and "no audio stream" in report.detail


def test_pocketsphinx_refuses_other_languages_and_names_the_alternatives():
    with pytest.raises(ModelUnavailableError, match="faster-whisper"):
        make_recognizer(TextSettings.model_validate({"asr": {"language": "es"}}).asr)


@pytest.mark.parametrize("backend", ["transformers", "faster-whisper"])
def test_whisper_backends_need_a_model_id(backend):
    with pytest.raises(ModelUnavailableError, match="model_id"):
        make_recognizer(TextSettings.model_validate({"asr": {"backend": backend}}).asr)
