"""Voice activity: Silero's ONNX model run by us (torch-free), and our segmentation state machine."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from encoder.text.config import VADSettings
from encoder.text.records import SpeechSpan
from encoder.text.vad import FRAME_S, SileroVAD, SpeechSegmenter, detect_speech, speech_fraction


def test_loading_the_vad_does_not_import_torch_or_silero():
    SileroVAD()
    assert "silero_vad" not in sys.modules  # importing it would set torch to one thread process-wide


def test_streaming_probabilities_equal_offline(spoken):
    samples = spoken["english"].samples
    vad = SileroVAD()
    whole = np.concatenate([vad.push(samples), vad.flush()])
    pieces = [vad.push(samples[i : i + 777]) for i in range(0, samples.size, 777)]
    assert np.array_equal(np.concatenate([*pieces, vad.flush()]), whole)


def test_speech_spans_cover_the_spoken_words(spoken):
    s = spoken["english"]
    spans = detect_speech(s.samples, VADSettings())
    assert spans, "Festival speech must be detected"
    for word in s.words:
        middle = (word.start_s + word.end_s) / 2
        assert any(span.start_s <= middle <= span.end_s for span in spans), word


def test_silence_and_noise_hold_no_speech():
    rng = np.random.default_rng(0)
    assert detect_speech(np.zeros(16_000 * 3, np.float32), VADSettings()) == []
    noise = (0.03 * rng.standard_normal(16_000 * 3)).astype(np.float32)
    assert detect_speech(noise, VADSettings()) == []


def _segment(probs: list[float], settings: VADSettings) -> list[SpeechSpan]:
    seg = SpeechSegmenter(settings)
    return seg.push(np.asarray(probs, np.float32)) + seg.finish(len(probs) * FRAME_S)


def test_short_pauses_do_not_split_a_segment_but_long_ones_do():
    settings = VADSettings(min_silence_ms=300, pad_ms=0, min_speech_ms=0)
    short_pause = [0.9] * 20 + [0.1] * 5 + [0.9] * 20  # 160 ms pause
    long_pause = [0.9] * 20 + [0.1] * 15 + [0.9] * 20  # 480 ms pause
    assert len(_segment(short_pause, settings)) == 1
    spans = _segment(long_pause, settings)
    assert len(spans) == 2
    assert spans[0].end_s == pytest.approx(20 * FRAME_S)
    assert spans[1].start_s == pytest.approx(35 * FRAME_S)


def test_overlong_speech_is_cut_at_its_quietest_frame():
    settings = VADSettings(max_segment_s=2.0, pad_ms=0, min_speech_ms=0)
    probs = [0.9] * 100
    probs[45] = 0.55  # the quietest frame in the second half of the first 2 s
    spans = _segment(probs, settings)
    assert len(spans) == 2
    assert spans[0].end_s == pytest.approx(45 * FRAME_S)
    assert all(s.duration_s <= 2.0 + 1e-6 for s in spans)


def test_padding_never_makes_spans_overlap():
    settings = VADSettings(min_silence_ms=100, pad_ms=500, min_speech_ms=0)
    spans = _segment([0.9] * 10 + [0.0] * 4 + [0.9] * 10, settings)
    assert len(spans) == 2 and spans[0].end_s <= spans[1].start_s


def test_short_blips_are_dropped():
    spans = _segment([0.0] * 10 + [0.9] * 3 + [0.0] * 30, VADSettings(min_speech_ms=250))
    assert spans == []


def test_speech_fraction_of_a_window():
    spans = [SpeechSpan(1.0, 2.0), SpeechSpan(3.0, 5.0)]
    assert speech_fraction(spans, 0.0, 4.0) == pytest.approx(0.5)
    assert speech_fraction(spans, 5.0, 6.0) == 0.0
