"""ingest.audio: demux + resample to 16 kHz mono, with clear reports instead of errors for missing audio."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ingest.audio import iter_audio_chunks, read_audio, resample
from vidsight.synth.video import moving_boxes_script, tone, write_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    script = moving_boxes_script(width=160, height=120, fps=10.0, duration_s=3.0)
    return {
        "silent_video": write_video(root / "no_audio.mp4", script).path,
        "tone_32k": write_video(
            root / "tone.mp4", script, audio=tone(3.0, hz=440, rate=32000), audio_rate=32000, start_s=2.0
        ).path,
    }


def test_video_without_audio_gives_empty_track_with_reason(clips):
    track = read_audio(clips["silent_video"])
    assert not track.has_audio
    assert track.duration_s == 0.0
    assert "no audio stream" in track.note and "video" in track.note


def test_resampled_track_is_16k_mono_and_keeps_the_stream_start(clips):
    track = read_audio(clips["tone_32k"])
    assert track.sample_rate == 16_000 and track.samples.dtype == np.float32 and track.samples.ndim == 1
    assert track.source_rate == 32_000 and track.codec == "aac"
    # AAC priming moves the first decoded sample slightly before the 2.0 s start.
    assert 1.9 <= track.start_s <= 2.0
    assert 2.9 <= track.duration_s <= 3.2
    # The 440 Hz tone survives resampling: its spectrum peaks at 440 Hz.
    middle = track.samples[8000:24000]
    spectrum = np.abs(np.fft.rfft(middle))
    assert abs(np.argmax(spectrum) * 16_000 / middle.size - 440) < 5


def test_streamed_chunks_equal_the_whole_track(clips):
    whole = read_audio(clips["tone_32k"])
    chunks = list(iter_audio_chunks(str(clips["tone_32k"])))
    assert chunks[0].start_s == pytest.approx(whole.start_s)
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), whole.samples)
    # Chunk clocks advance by the samples before them.
    for a, b in itertools.pairwise(chunks):
        assert b.start_s == pytest.approx(a.end_s)


def test_resample_halves_the_sample_count_from_32k():
    x = tone(2.0, rate=32_000)
    y = resample(x, 32_000)
    assert abs(y.size - x.size // 2) <= 64
    with pytest.raises(ValueError, match=r"\[4000, 192000\]"):
        resample(x, 100)
