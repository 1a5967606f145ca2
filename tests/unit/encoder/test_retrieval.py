"""SigLIP retrieval encoder: unit-norm embeddings and SigLIP's own sigmoid match score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoder.errors import FrameShapeError
from encoder.retrieval import RetrievalEncoder

from .conftest import SETTINGS, random_frames

TEXTS = ["a red car turns left", "a person walks through the door", "empty parking lot"]


def test_image_and_text_embeddings_are_unit_norm_float32(retrieval: RetrievalEncoder) -> None:
    images = retrieval.embed_images(random_frames(3, 120, 160))
    texts = retrieval.embed_texts(TEXTS)
    for emb, n in ((images, 3), (texts, 3)):
        assert emb.dtype == np.float32 and emb.shape == (n, retrieval.dim)
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_batch_of_mixed_sizes_keeps_input_order(retrieval: RetrievalEncoder) -> None:
    frames = [*random_frames(2, 120, 160, seed=1), *random_frames(1, 300, 200, seed=2)]
    frames = [frames[0], frames[2], frames[1]]
    together = retrieval.embed_images(frames)
    alone = np.concatenate([retrieval.embed_images([f]) for f in frames])
    assert np.allclose(together, alone, atol=1e-5)


def test_match_probability_equals_siglip_forward_sigmoid_of_logits() -> None:
    model = RetrievalEncoder.from_settings(SETTINGS).model  # a private copy: its scale is changed below
    with torch.no_grad():  # make the scale and bias non-trivial so the check can fail
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-1.7)
    scorer = RetrievalEncoder(model, SETTINGS)
    frames = random_frames(2, 224, 224)
    input_ids = scorer._tokenizer_factory()(
        TEXTS, padding="max_length", max_length=SETTINGS.text_max_tokens, truncation=True, return_tensors="pt"
    )["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=input_ids, pixel_values=scorer.pixel_values(frames)).logits_per_image
    expected = torch.sigmoid(logits).numpy()
    got = scorer.match_probability(scorer.embed_images(frames), scorer.embed_texts(TEXTS))
    assert got.shape == (2, 3)
    assert np.allclose(got, expected, atol=1e-5)


def test_same_seed_same_embeddings(retrieval: RetrievalEncoder) -> None:
    frames = random_frames(2)
    again = RetrievalEncoder.from_settings(SETTINGS)
    other = RetrievalEncoder.from_settings(SETTINGS.model_copy(update={"seed": 1}))
    assert np.array_equal(retrieval.embed_images(frames), again.embed_images(frames))
    assert not np.allclose(again.embed_images(frames), other.embed_images(frames))


def test_embed_texts_refuses_a_bare_string(retrieval: RetrievalEncoder) -> None:
    with pytest.raises(FrameShapeError, match="list of strings"):
        retrieval.embed_texts("a red car")  # type: ignore[arg-type]
