"""Voice activity with Silero VAD's batched ("sequence") ONNX model, which ships in `silero-vad`.

We run the ONNX file through onnxruntime ourselves instead of importing `silero_vad`: importing
that package imports torch and calls `torch.set_num_threads(1)` for the whole process, which
would slow every other torch model here. The model scores 32 ms frames (512 samples at 16 kHz,
each with the previous frame's last 64 samples as context) and carries an LSTM state, so
feeding audio in any chunking gives the same probabilities: streaming equals offline.

Segments come from a hysteresis state machine over the frame probabilities (our own, after the
one in silero-vad's `get_speech_timestamps`): speech starts at `threshold`, ends after
`min_silence_ms` below `neg_threshold`, and an over-long segment is cut at its quietest frame.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import VADSettings
from .errors import AudioFormatError, ModelUnavailableError
from .records import SpeechSpan

RATE_HZ = 16_000
FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64
FRAME_S = FRAME_SAMPLES / RATE_HZ
_MODEL_FILE = "silero_vad_16k_sequence.onnx"
_MAX_FRAMES_PER_CALL = 512  # about 16 s of audio per ONNX call


def silero_model_path() -> Path:
    """The bundled ONNX file, found without importing the package (see the module docstring)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("silero-vad is not installed (pip install silero-vad)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / _MODEL_FILE
    if not path.is_file():
        raise ModelUnavailableError(
            f"silero-vad is installed but has no {_MODEL_FILE} (need silero-vad >= 6)"
        )
    return path


class SileroVAD:
    """Per-frame speech probabilities. One instance holds one stream's state; not thread-safe."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(silero_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, np.float32)
        self._pending = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities [F] for every whole frame completed by `samples` (16 kHz mono float32)."""
        _check_samples(samples)
        audio = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = audio.size // FRAME_SAMPLES
        self._pending = audio[whole * FRAME_SAMPLES :].copy()
        if whole == 0:
            return np.zeros(0, np.float32)
        frames = audio[: whole * FRAME_SAMPLES].reshape(whole, FRAME_SAMPLES)
        return np.concatenate(
            [self._run(frames[i : i + _MAX_FRAMES_PER_CALL]) for i in range(0, whole, _MAX_FRAMES_PER_CALL)]
        )

    def flush(self) -> np.ndarray:
        """Score the last partial frame (zero-padded) and reset for a new stream."""
        probs = np.zeros(0, np.float32)
        if self._pending.size:
            frame = np.zeros((1, FRAME_SAMPLES), np.float32)
            frame[0, : self._pending.size] = self._pending
            probs = self._run(frame)
        self.reset()
        return probs

    def _run(self, frames: np.ndarray) -> np.ndarray:
        """frames: [F, 512] -> probabilities [F]; each frame gets its predecessor's tail as context."""
        contexts = np.empty((frames.shape[0], CONTEXT_SAMPLES), np.float32)
        contexts[0] = self._context
        contexts[1:] = frames[:-1, -CONTEXT_SAMPLES:]
        self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
        block = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
        probs, self._h, self._c = self._session.run(
            ["speech_probs", "hn", "cn"], {"input": block, "h": self._h, "c": self._c}
        )
        return np.asarray(probs, np.float32).reshape(-1)


class SpeechSegmenter:
    """Turns frame probabilities into speech spans, frame by frame (no look-ahead beyond min_silence)."""

    def __init__(self, settings: VADSettings, start_s: float = 0.0) -> None:
        if settings.neg_threshold > settings.threshold:
            raise ValueError(
                f"VAD neg_threshold ({settings.neg_threshold}) must be <= threshold ({settings.threshold})"
            )
        self._s = settings
        self._origin_s = start_s
        self._min_silence = max(1, round(settings.min_silence_ms / 1000 / FRAME_S))
        self._min_speech = round(settings.min_speech_ms / 1000 / FRAME_S)
        self._max_frames = max(2, round(settings.max_segment_s / FRAME_S))
        self._pad_s = settings.pad_ms / 1000
        self._frame = 0  # index of the next frame
        self._start: int | None = None  # first frame of the open segment
        self._silence_start: int | None = None
        self._probs: list[float] = []  # probabilities of the open segment, for cutting at max length
        self._last_end_s = start_s

    def push(self, probs: np.ndarray) -> list[SpeechSpan]:
        closed: list[tuple[int, int]] = []
        for p in probs.tolist():
            self._step(p, closed)
            self._frame += 1
        return [self._span(a, b) for a, b in closed]

    def finish(self, end_s: float | None = None) -> list[SpeechSpan]:
        """Close an open segment at the end of the audio."""
        spans: list[SpeechSpan] = []
        if self._start is not None:
            end = self._silence_start if self._silence_start is not None else self._frame
            if end - self._start >= max(1, self._min_speech):
                spans.append(self._span(self._start, end, end_s))
        self._start, self._silence_start, self._probs = None, None, []
        return spans

    def _step(self, p: float, closed: list[tuple[int, int]]) -> None:
        i = self._frame
        if self._start is None:
            if p >= self._s.threshold:
                self._start, self._silence_start, self._probs = i, None, [p]
            return
        self._probs.append(p)
        if p >= self._s.threshold:
            self._silence_start = None
        elif p < self._s.neg_threshold:
            self._silence_start = i if self._silence_start is None else self._silence_start
            if i - self._silence_start + 1 >= self._min_silence:
                if self._silence_start - self._start >= self._min_speech:
                    closed.append((self._start, self._silence_start))
                self._start, self._silence_start, self._probs = None, None, []
                return
        if i - self._start + 1 >= self._max_frames:
            self._cut_at_quietest(closed)

    def _cut_at_quietest(self, closed: list[tuple[int, int]]) -> None:
        """Cut an over-long segment at its quietest frame in the second half (never mid-word if avoidable)."""
        assert self._start is not None
        half = len(self._probs) // 2
        cut = half + int(np.argmin(self._probs[half:]))
        closed.append((self._start, self._start + cut))
        self._probs = self._probs[cut + 1 :]
        self._start = self._start + cut + 1
        self._silence_start = None

    def _span(self, first: int, end: int, end_s: float | None = None) -> SpeechSpan:
        start_s = max(self._origin_s + first * FRAME_S - self._pad_s, self._last_end_s)
        stop_s = self._origin_s + end * FRAME_S + self._pad_s
        if end_s is not None:
            stop_s = min(stop_s, end_s)
        self._last_end_s = stop_s
        return SpeechSpan(round(start_s, 4), round(stop_s, 4))


def detect_speech(
    samples: np.ndarray, settings: VADSettings, *, start_s: float = 0.0, vad: SileroVAD | None = None
) -> list[SpeechSpan]:
    """Speech spans of a whole 16 kHz mono track, in stream seconds (start_s is the first sample's time)."""
    vad = vad or SileroVAD()
    vad.reset()
    segmenter = SpeechSegmenter(settings, start_s)
    spans = segmenter.push(vad.push(samples))
    spans += segmenter.push(vad.flush())
    return spans + segmenter.finish(start_s + samples.size / RATE_HZ)


def speech_fraction(spans: Sequence[SpeechSpan], start_s: float, end_s: float) -> float:
    """Share of [start_s, end_s) covered by speech spans."""
    if end_s <= start_s:
        return 0.0
    covered = sum(max(0.0, min(s.end_s, end_s) - max(s.start_s, start_s)) for s in spans)
    return min(1.0, covered / (end_s - start_s))


def _check_samples(samples: Any) -> None:
    if not isinstance(samples, np.ndarray) or samples.ndim != 1 or samples.dtype != np.float32:
        shape = getattr(samples, "shape", None)
        dtype = getattr(samples, "dtype", type(samples).__name__)
        raise AudioFormatError(f"VAD expects [N] float32 mono samples at {RATE_HZ} Hz, got {shape} {dtype}")
