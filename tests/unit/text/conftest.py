"""Models and media shared by the text-channel unit tests, built once per session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from encoder.text import TextEmbedder, TextSettings
from encoder.text.asr import PocketSphinxRecognizer
from encoder.text.ocr import SlideOCR
from ingest.audio import resample
from vidsight.synth.lecture import SpokenWord, festival_available, synthesize

ENGLISH = (
    "Twice a day the sea rises and falls along the coast. Sailors have used printed tables for "
    "centuries to plan when to leave the harbor."
)
ENGLISH_2 = "Computers can learn to recognize faces and voices by looking at many examples."
SPANISH = "El gato negro duerme en la ventana mientras llueve sobre la ciudad antigua y los perros ladran."


@dataclass(frozen=True)
class Spoken:
    text: str
    samples: np.ndarray  # [N] float32 at 16 kHz
    words: tuple[SpokenWord, ...]  # Festival's timings


@pytest.fixture(scope="session")
def settings() -> TextSettings:
    return TextSettings.model_validate({"asr": {"workers": 1}})


@pytest.fixture(scope="session")
def spoken() -> dict[str, Spoken]:
    """Festival (HTS voice) speech with its own word timings; skipped where Festival is missing."""
    if not festival_available():
        pytest.skip("festival with voice cmu_us_slt_arctic_hts is not installed")
    texts = {"english": ENGLISH, "english_2": ENGLISH_2, "spanish": SPANISH}
    speech = synthesize(list(texts.values()))
    return {
        name: Spoken(text, resample(s.samples, s.rate), s.words)
        for (name, text), s in zip(texts.items(), speech, strict=True)
    }


@pytest.fixture(scope="session")
def recognizer(settings: TextSettings) -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer(settings.asr)


@pytest.fixture(scope="session")
def ocr(settings: TextSettings) -> SlideOCR:
    engine = SlideOCR(settings.ocr)
    engine.warmup()
    return engine


@pytest.fixture(scope="session")
def embedder(settings: TextSettings) -> TextEmbedder:
    model = TextEmbedder(settings.index)
    model.warmup()
    return model
