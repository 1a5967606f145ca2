"""Tiny real models (random weights, fixed seed) shared by the encoder tests."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from encoder.config import EncoderSettings
from encoder.retrieval import RetrievalEncoder
from encoder.vision_tower import VisionTower

SETTINGS = EncoderSettings(device="cpu", vlm_model="tiny", retrieval_model="tiny", seed=0)


@pytest.fixture(scope="session")
def tower() -> VisionTower:
    return VisionTower.from_settings(SETTINGS)


@pytest.fixture(scope="session")
def retrieval() -> RetrievalEncoder:
    return RetrievalEncoder.from_settings(SETTINGS)


def random_frames(n: int, height: int = 112, width: int = 168, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def make_frames(stream_id: str, rgbs: list[np.ndarray], start: int = 0):  # -> list[ingest.Frame]
    from ingest import Frame

    return [
        Frame(stream_id, start + i, (start + i) * 500, Fraction(1, 1000), rgb) for i, rgb in enumerate(rgbs)
    ]
