"""Audio-guided budgets (OmniZip-style): narrated windows get more of the visual token budget."""

from __future__ import annotations

import numpy as np
import pytest

from encoder.text import audio_activity, event_weights, split_budget, uniform_windows
from encoder.text.config import BudgetSettings
from encoder.text.records import SpeechSpan
from ingest.audio import AudioTrack


@pytest.mark.parametrize("total", [0, 1, 7, 100, 4096])
def test_split_budget_sums_exactly_and_keeps_the_minimum(total):
    weights = [0.25, 1.0, 0.6, 0.25, 0.9]
    parts = split_budget(total, weights, min_tokens=0)
    assert sum(parts) == total and all(p >= 0 for p in parts)
    if total >= 10:
        floor = split_budget(total, weights, min_tokens=2)
        assert sum(floor) == total and min(floor) >= 2


def test_split_budget_is_proportional_and_refuses_impossible_minimums():
    assert split_budget(100, [1.0, 3.0]) == [25, 75]
    assert split_budget(10, [0.0, 0.0]) == [5, 5]
    with pytest.raises(ValueError, match="needs 30"):
        split_budget(20, [1.0, 1.0, 1.0], min_tokens=10)


def test_speech_windows_outweigh_silent_ones_and_sound_counts_less_than_speech():
    settings = BudgetSettings(silent_floor=0.25, audio_activity_weight=0.5)
    rate = 16_000
    samples = np.zeros(rate * 30, np.float32)
    samples[rate * 20 : rate * 30] = 0.1 * np.sin(
        np.arange(rate * 10) * 2 * np.pi * 300 / rate
    )  # music, no speech
    track = AudioTrack(samples, rate)
    windows = uniform_windows(0.0, 30.0, 10.0)
    activity = audio_activity(windows, [SpeechSpan(0.0, 10.0)], settings, track)
    speech, silent, music = (a.weight for a in activity)
    assert speech == pytest.approx(1.0)
    assert silent == pytest.approx(0.25)
    assert music == pytest.approx(0.25 + 0.75 * 0.5, abs=0.01)
    budget = split_budget(1000, [a.weight for a in activity])
    assert budget[0] > budget[2] > budget[1]


def test_uniform_windows_cover_the_range():
    assert uniform_windows(0.0, 25.0, 10.0) == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]


def test_event_weights_at_query_time_follow_the_share_of_speech():
    spans = [SpeechSpan(5.0, 10.0), SpeechSpan(20.0, 40.0)]
    settings = BudgetSettings(silent_floor=0.2)
    weights = event_weights([(0.0, 5.0), (0.0, 10.0), (20.0, 30.0), (40.0, 50.0)], spans, settings)
    assert weights == pytest.approx([0.2, 0.6, 1.0, 0.2])
    assert event_weights([(0.0, 10.0)], [], settings) == pytest.approx([0.2])
