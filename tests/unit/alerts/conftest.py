"""Real models for the alert unit tests: the bundled all-MiniLM-L6-v2 (real weights, text channel) and
the tiny random-weight SigLIP (visual channel: meaningless scores, which must never fire)."""

from __future__ import annotations

import numpy as np
import pytest

from api.alerts.decision import EventView


@pytest.fixture(scope="session")
def minilm():
    from encoder.text import TextEmbedder
    from encoder.text.config import IndexSettings

    embedder = TextEmbedder(IndexSettings())
    embedder.warmup()
    return embedder.encode


@pytest.fixture(scope="session")
def tiny_siglip():
    from encoder import EncoderSettings, RetrievalEncoder

    return RetrievalEncoder.from_settings(
        EncoderSettings(retrieval_model="tiny", device="cpu", dtype="float32")
    )


def view(
    event_id: str, t_s: float, text: str = "", *, stream_id: str = "cam", dim: int = 32, wall: bool = False
) -> EventView:
    rng = np.random.default_rng(abs(hash(event_id)) % 2**32)
    emb = rng.standard_normal(dim).astype(np.float32)
    return EventView(
        event_id, stream_id, t_s, t_s + 5.0, t_s if wall else None, t_s + 5.0 if wall else None,
        emb / np.linalg.norm(emb), text,
    )  # fmt: skip
