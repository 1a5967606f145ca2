"""Whisper recognizers, configured by model id where weights exist (a hub id online, a local
directory offline). Neither library nor weights ship with vidsight; both import lazily.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import ASRSettings
from .errors import ModelUnavailableError
from .records import Word

RATE_HZ = 16_000


def _require_model_id(settings: ASRSettings) -> str:
    if not settings.model_id:
        raise ModelUnavailableError(
            f"ASR backend {settings.backend!r} needs asr.model_id ('openai/whisper-small' or a local path)"
        )
    return settings.model_id


class TransformersWhisperRecognizer:
    """transformers' speech-recognition pipeline with word timestamps (cross-attention alignment)."""

    name = "transformers-whisper"

    def __init__(self, settings: ASRSettings) -> None:
        model_id = _require_model_id(settings)
        try:
            from transformers import pipeline
        except ImportError as exc:
            raise ModelUnavailableError("transformers is not installed") from exc
        try:
            self._pipe: Any = pipeline("automatic-speech-recognition", model=model_id, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"cannot load Whisper model {model_id!r} offline: {exc}") from exc
        generation = getattr(self._pipe.model, "generation_config", None)
        # English-only checkpoints (*.en) reject a language argument.
        self._generate: dict[str, Any] = (
            {"language": settings.language, "task": "transcribe"}
            if getattr(generation, "is_multilingual", False)
            else {}
        )

    def transcribe(self, samples: np.ndarray, start_s: float = 0.0) -> list[Word]:
        out = self._pipe(
            {"raw": samples.astype(np.float32, copy=False), "sampling_rate": RATE_HZ},
            return_timestamps="word",
            generate_kwargs=self._generate,
        )
        words = []
        for chunk in out.get("chunks", []):
            begin, end = chunk["timestamp"]
            text = chunk["text"].strip()
            if not text or begin is None:
                continue
            end = begin if end is None else end
            words.append(Word(text, round(start_s + begin, 3), round(start_s + end, 3), None))
        return words


class FasterWhisperRecognizer:
    """CTranslate2 Whisper (faster-whisper) with word timestamps and word probabilities."""

    name = "faster-whisper"

    def __init__(self, settings: ASRSettings) -> None:
        model_id = _require_model_id(settings)
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ModelUnavailableError(
                "faster-whisper is not installed (pip install faster-whisper)"
            ) from exc
        try:
            self._model: Any = WhisperModel(model_id, device="cpu", compute_type="int8")
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(f"cannot load faster-whisper model {model_id!r}: {exc}") from exc
        self._language = settings.language
        self._min_confidence = settings.min_word_confidence

    def transcribe(self, samples: np.ndarray, start_s: float = 0.0) -> list[Word]:
        segments, _info = self._model.transcribe(
            samples.astype(np.float32, copy=False),
            language=self._language,
            word_timestamps=True,
            vad_filter=False,
        )
        words = []
        for segment in segments:
            for w in segment.words or ():
                if w.probability < self._min_confidence or not w.word.strip():
                    continue
                words.append(
                    Word(
                        w.word.strip(),
                        round(start_s + w.start, 3),
                        round(start_s + w.end, 3),
                        round(w.probability, 4),
                    )
                )
        return words
