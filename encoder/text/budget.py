"""Audio-guided visual token budgets, after OmniZip (Tao et al. 2025, arXiv 2511.14582).

OmniZip scores each time window by how much salient audio it holds and prunes that window's video
tokens less when the score is high. Without an audio-language model we take the score from what we
measure directly: the share of the window covered by speech (VAD), and, at a lower weight, the
share of frames with any sound. A window's weight is

    weight = silent_floor + (1 - silent_floor) * max(speech_fraction, audio_activity_weight * sound_fraction)

so a silent window still gets silent_floor of a fully narrated one, and the query-time token budget
is split across windows in proportion to the weights (exactly, by largest remainder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .config import BudgetSettings
from .records import SpeechSpan
from .vad import speech_fraction

if TYPE_CHECKING:
    from ingest.audio import AudioTrack

_SOUND_FRAME_S = 0.032
_SOUND_DBFS = -45.0  # a frame louder than this is "sound" (room tone of a quiet recording is below)


@dataclass(frozen=True, slots=True)
class WindowActivity:
    start_s: float
    end_s: float
    speech_fraction: float
    sound_fraction: float
    weight: float


def audio_activity(
    windows: Sequence[tuple[float, float]],
    spans: Sequence[SpeechSpan],
    settings: BudgetSettings,
    track: AudioTrack | None = None,
) -> list[WindowActivity]:
    """Weight per (start_s, end_s) window. Without a track, only speech spans count."""
    loud = _loud_frames(track) if track is not None and track.has_audio else None
    out = []
    for start_s, end_s in windows:
        if end_s < start_s:
            raise ValueError(f"window ends before it starts: ({start_s}, {end_s})")
        speech = speech_fraction(spans, start_s, end_s)
        sound = _fraction_loud(loud, track, start_s, end_s) if loud is not None and track is not None else 0.0
        activity = max(speech, settings.audio_activity_weight * sound)
        weight = settings.silent_floor + (1 - settings.silent_floor) * activity
        out.append(WindowActivity(start_s, end_s, round(speech, 4), round(sound, 4), round(weight, 6)))
    return out


def event_weights(
    events: Sequence[tuple[float, float]], spans: Sequence[SpeechSpan], settings: BudgetSettings
) -> list[float]:
    """Weight per (start_s, end_s) event at query time, from the speech recorded in the text index
    (the audio itself is not kept): the same formula as `audio_activity` with speech alone."""
    return [
        settings.silent_floor + (1 - settings.silent_floor) * speech_fraction(spans, start_s, end_s)
        for start_s, end_s in events
    ]


def split_budget(total_tokens: int, weights: Sequence[float], *, min_tokens: int = 0) -> list[int]:
    """Integers summing to total_tokens, proportional to weights, each at least min_tokens."""
    n = len(weights)
    if n == 0:
        return []
    if total_tokens < 0 or min_tokens < 0:
        raise ValueError(f"budgets must be >= 0, got total_tokens={total_tokens}, min_tokens={min_tokens}")
    if min_tokens * n > total_tokens:
        raise ValueError(
            f"min_tokens={min_tokens} for {n} windows needs {min_tokens * n} > total_tokens={total_tokens}"
        )
    w = np.clip(np.asarray(weights, np.float64), 0, None)
    w = np.ones(n) if w.sum() <= 0 else w
    spare = total_tokens - min_tokens * n
    exact = spare * w / w.sum()
    base = np.floor(exact).astype(int)
    remainder = spare - int(base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:remainder]] += 1
    return [int(b) + min_tokens for b in base]


def uniform_windows(start_s: float, end_s: float, window_s: float) -> list[tuple[float, float]]:
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    count = max(1, math.ceil((end_s - start_s) / window_s - 1e-9))
    return [(start_s + i * window_s, min(end_s, start_s + (i + 1) * window_s)) for i in range(count)]


def _loud_frames(track: AudioTrack) -> np.ndarray:
    """[F] bool: 32 ms frames louder than _SOUND_DBFS."""
    size = max(1, round(_SOUND_FRAME_S * track.sample_rate))
    frames = track.samples[: track.samples.size // size * size].reshape(-1, size)
    rms = np.sqrt(np.mean(np.square(frames), axis=1) + 1e-12)
    return 20 * np.log10(rms) > _SOUND_DBFS


def _fraction_loud(loud: np.ndarray, track: AudioTrack, start_s: float, end_s: float) -> float:
    a = max(0, int((start_s - track.start_s) / _SOUND_FRAME_S))
    b = min(loud.size, (math.ceil((end_s - track.start_s) / _SOUND_FRAME_S)))
    return float(loud[a:b].mean()) if b > a else 0.0
