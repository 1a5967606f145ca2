"""The text index: BM25 keeps exact rare terms, FAISS filters, persistence survives a torn tail."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from encoder.text.records import TextChunk
from memory.text_index import TextIndex, TextIndexError, tokenize

DIM = 16


def _vec(text: str) -> np.ndarray:
    """A deterministic unit vector per text (the index stores vectors; it does not embed)."""
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _chunks() -> list[TextChunk]:
    texts = [
        ("ocr", 0, "Photosynthesis: 6CO2 + 6H2O -> C6H12O6 + 6O2"),
        ("ocr", 30, "Quantum mechanics: the Schrödinger equation and E=mc^2"),
        ("speech", 32, "energy and mass are related, as the famous formula says"),
        ("ocr", 60, "Blockchain: proof of work with SHA-256 hashing"),
        ("speech", 62, "the chemistry of sugar made by green plants in their leaves"),
        ("speech", 90, "hashing functions and sugar and energy in general terms"),
    ]
    return [TextChunk("lec", ch, float(t), float(t + 25), text) for ch, t, text in texts]


@pytest.fixture()
def index(tmp_path):
    idx = TextIndex(tmp_path / "text", DIM)
    chunks = _chunks()
    idx.add(chunks, np.stack([_vec(c.text) for c in chunks]))
    return idx


@pytest.mark.parametrize(
    ("query", "expected"),
    [("C6H12O6", 0), ("Schrödinger", 30), ("schrodinger", None), ("E=mc^2", 30), ("SHA-256", 60)],
)
def test_keyword_index_finds_exact_rare_terms(index, query, expected):
    hits = index.keyword_search(query, k=3)
    if expected is None:
        assert hits == []  # no fuzzy matching: exact terms only
    else:
        assert hits and hits[0].chunk.start_pts_s == expected


def test_tokens_keep_formulas_whole_and_split_their_parts():
    terms = tokenize("E=mc^2 and SHA-256, cells")
    assert "e=mc^2" in terms and "mc" in terms and "sha-256" in terms and "256" in terms
    assert "cell" in terms and "and" not in terms


def test_keyword_coverage_tells_one_word_matches_from_full_matches(index):
    hits = index.keyword_search("sugar energy hashing", k=6)
    assert hits[0].chunk.start_pts_s == 90 and hits[0].coverage == pytest.approx(1.0)
    assert all(h.coverage < 1.0 for h in hits[1:])


def test_semantic_search_returns_the_nearest_vector_under_filters(index):
    chunk = _chunks()[4]
    hits = index.semantic_search(_vec(chunk.text), k=2)
    assert hits[0].chunk == chunk and hits[0].score == pytest.approx(1.0, abs=1e-5)
    ocr_only = index.semantic_search(_vec(chunk.text), k=10, channels=["ocr"])
    assert ocr_only and all(h.chunk.channel == "ocr" for h in ocr_only)
    late = index.semantic_search(_vec(chunk.text), k=10, start_s=70.0)
    assert {h.chunk.start_pts_s for h in late} == {60.0, 62.0, 90.0}  # overlap [70, ...)
    assert index.semantic_search(_vec(chunk.text), k=10, stream_id="other") == []


def test_adding_the_same_chunks_again_adds_nothing(index):
    chunks = _chunks()
    assert index.add(chunks, np.stack([_vec(c.text) for c in chunks])) == 0
    assert len(index) == len(chunks)


def test_reopened_index_answers_the_same(index, tmp_path):
    before = [(h.chunk, h.score) for h in index.keyword_search("sugar", k=5)]
    again = TextIndex(tmp_path / "text", DIM)
    assert len(again) == len(index)
    assert [(h.chunk, h.score) for h in again.keyword_search("sugar", k=5)] == before
    assert again.semantic_search(_vec(_chunks()[1].text), k=1)[0].chunk == _chunks()[1]


def test_a_torn_tail_is_cut_back_to_whole_rows(index, tmp_path):
    folder = tmp_path / "text"
    with open(folder / "chunks.jsonl", "a") as f:
        f.write('{"stream_id": "lec", "channel": "ocr", "start_pts')  # crash mid-line
    with open(folder / "vectors.f32", "ab") as f:
        f.write(b"\0" * 10)  # and mid-row
    again = TextIndex(folder, DIM)
    assert len(again) == len(_chunks())
    extra = TextChunk("lec", "ocr", 200.0, 210.0, "appended after recovery")
    again.add([extra], _vec(extra.text)[None, :])
    assert len(TextIndex(folder, DIM)) == len(_chunks()) + 1


def test_removing_a_stream_persists(index, tmp_path):
    other = TextChunk("other", "speech", 0.0, 5.0, "another stream")
    index.add([other], _vec(other.text)[None, :])
    assert index.remove_stream("lec") == len(_chunks())
    assert [c.stream_id for c in TextIndex(tmp_path / "text", DIM).chunks_in()] == ["other"]


def test_bad_inputs_name_what_was_allowed(index, tmp_path):
    with pytest.raises(TextIndexError, match=r"\[1, 16\]"):
        index.add([_chunks()[0]], np.zeros((1, 8), np.float32))
    with pytest.raises(TextIndexError, match="allowed"):
        index.keyword_search("x", channels=["visual"])
    with pytest.raises(TextIndexError, match="16-dim"):
        TextIndex(tmp_path / "text", 32)
