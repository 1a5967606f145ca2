"""Speech recognition behind one small interface, with pocketsphinx (its en-US model ships in the
package) as the offline default and Whisper backends (see `whisper.py`) configured by model id.

pocketsphinx holds the GIL while it decodes, so a recorded file is transcribed by a pool of
processes, one VAD span per job; every span is decoded from a reset front end
(`reinit_feat`), so the words do not depend on which worker decoded what before: the pool, a
single process and the live transcriber give the same words for the same span.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import numpy as np

from .config import ASRSettings
from .errors import AudioFormatError, ModelUnavailableError
from .records import Word

RATE_HZ = 16_000
_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_VARIANT = re.compile(r"\(\d+\)$")


class Recognizer(Protocol):
    """Words of one speech span. samples: [N] float32 mono at 16 kHz; start_s: stream time of sample 0."""

    name: str

    def transcribe(self, samples: np.ndarray, start_s: float = 0.0) -> list[Word]: ...


class PocketSphinxRecognizer:
    """CMU pocketsphinx with its bundled en-US acoustic model, dictionary and language model."""

    name = "pocketsphinx"

    def __init__(self, settings: ASRSettings) -> None:
        if not settings.language.lower().startswith("en"):
            raise ModelUnavailableError(
                f"pocketsphinx ships only an en-US model, asked for language {settings.language!r}; "
                "use backend 'transformers' or 'faster-whisper' with a multilingual model_id"
            )
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise ModelUnavailableError("pocketsphinx is not installed (pip install pocketsphinx)") from exc
        options: dict[str, Any] = {"samprate": RATE_HZ, "loglevel": "FATAL"}
        if settings.fast:
            # Measured on Festival speech: 1.5x faster, word error 6% -> 7%.
            options.update(fwdflat=False, ds=2, topn=2)
        self._decoder = Decoder(**options)
        self._frame_s = 1.0 / float(self._decoder.config["frate"])
        self._min_confidence = settings.min_word_confidence

    def transcribe(self, samples: np.ndarray, start_s: float = 0.0) -> list[Word]:
        pcm = to_pcm16(samples)
        if pcm.size < RATE_HZ // 10:
            return []
        decoder = self._decoder
        decoder.reinit_feat()  # forget the previous span's cepstral mean: same words in any worker
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        words = []
        for seg in decoder.seg():
            if _FILLER.match(seg.word):
                continue
            confidence = float(seg.prob)
            if confidence < self._min_confidence:
                continue
            text = _VARIANT.sub("", seg.word)
            words.append(
                Word(
                    text=text,
                    start_s=round(start_s + seg.start_frame * self._frame_s, 3),
                    end_s=round(start_s + (seg.end_frame + 1) * self._frame_s, 3),
                    confidence=round(confidence, 4),
                )
            )
        return words


def make_recognizer(settings: ASRSettings) -> Recognizer:
    """The configured backend. Whisper backends load their weights by model_id (offline: a local path)."""
    if settings.backend == "pocketsphinx":
        return PocketSphinxRecognizer(settings)
    from .whisper import FasterWhisperRecognizer, TransformersWhisperRecognizer

    if settings.backend == "transformers":
        return TransformersWhisperRecognizer(settings)
    if settings.backend == "faster-whisper":
        return FasterWhisperRecognizer(settings)
    raise ModelUnavailableError(
        f"unknown ASR backend {settings.backend!r}; allowed: pocketsphinx, transformers, faster-whisper"
    )


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """[N] float32 in [-1, 1] -> [N] int16 (what pocketsphinx reads)."""
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        raise AudioFormatError(
            f"ASR expects [N] mono samples, got {getattr(samples, 'shape', type(samples))}"
        )
    return (np.clip(samples.astype(np.float32, copy=False), -1.0, 1.0) * 32767.0).astype(np.int16)


# One recognizer per worker process, built once by the pool's initializer (a process-local
# global is the only place a ProcessPoolExecutor worker can keep state between jobs).
_worker_recognizer: Recognizer | None = None


def init_worker(settings_json: str) -> None:
    global _worker_recognizer
    _worker_recognizer = make_recognizer(ASRSettings.model_validate_json(settings_json))


def transcribe_in_worker(samples: np.ndarray, start_s: float) -> list[Word]:
    if _worker_recognizer is None:
        raise RuntimeError("ASR worker used before init_worker ran")
    return _worker_recognizer.transcribe(samples, start_s)


def ping_worker() -> bool:
    return _worker_recognizer is not None
