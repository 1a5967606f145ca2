"""Raw scores of one event against every active query, per evidence channel.

- visual: the retrieval encoder's (SigLIP) logit `exp(logit_scale) * cos(event, query) + logit_bias`
  and its sigmoid, the match probability. The logit is what calibration looks at (the probability
  saturates), the probability is what the absolute floor looks at.
- text: the event's OCR/speech text vs the query: the best MiniLM cosine over the text's lines and
  sentences, and the keyword overlap (share of the query's "quoted phrases", or else of its content
  words, found in the text). text score = max(cosine, overlap).

An event is embedded once however many queries there are; queries are embedded once per definition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .config import ScoringSettings

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_PHRASE = re.compile(r'"([^"]+)"')
_SPLIT = re.compile(r"[\n\r]+|(?<=[.!?;])\s+")
_STOPWORDS = """
a an and any are as at be been being by can could did do does for from has have in into is it its of on or
over some someone something that the their them there these this those to under up was were what when where
which who with within without anyone anything show shows showing appears video scene image picture frame
camera footage
"""
STOPWORDS = frozenset(_STOPWORDS.split())


class VisualTextEncoder(Protocol):
    """What the visual channel needs of the retrieval encoder (encoder.RetrievalEncoder has it)."""

    logit_scale: float  # already exponentiated
    logit_bias: float

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...  # [B, D] unit norm


PassageEmbedder = Callable[[Sequence[str]], np.ndarray]  # texts -> [N, Dt] unit norm (MiniLM)


@dataclass(frozen=True, slots=True)
class QueryTower:
    """A VisualTextEncoder from parts, where the retrieval encoder lives elsewhere (a Ray actor's
    `embed_texts`, with the scalars read once from its model)."""

    embed: Callable[[Sequence[str]], np.ndarray]
    logit_scale: float  # exp(model.logit_scale)
    logit_bias: float

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.embed(list(texts)), np.float32)


def words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower())]


def _stem(word: str) -> str:
    # a light plural/verb strip so "cars"/"car" and "running"/"runs" meet; OCR gives upper case anyway
    for suffix in ("ing", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def query_terms(query: str) -> tuple[tuple[str, ...], ...]:
    """Terms whose presence the keyword overlap counts: each "quoted phrase" as one term (a word
    sequence), or else each content word."""
    phrases = [tuple(words(p)) for p in _PHRASE.findall(query)]
    phrases = [p for p in phrases if p]
    if phrases:
        return tuple(phrases)
    content = [w for w in words(query) if w not in STOPWORDS and len(w) > 1]
    return tuple((w,) for w in dict.fromkeys(content))


def keyword_overlap(terms: Sequence[tuple[str, ...]], text_words: Sequence[str]) -> tuple[float, list[str]]:
    """(share of terms found as consecutive words of the text, the terms found)."""
    if not terms:
        return 0.0, []
    joined = " " + " ".join(text_words) + " "
    found = [" ".join(t) for t in terms if " " + " ".join(t) + " " in joined]
    return len(found) / len(terms), found


def text_chunks(text: str, max_chunks: int) -> list[str]:
    """Lines and sentences of the text (OCR gives lines), each scored on its own, plus the whole text."""
    parts = [p.strip() for p in _SPLIT.split(text) if p.strip()]
    chunks = parts[:max_chunks]
    whole = " ".join(parts)
    if whole and whole not in chunks:
        chunks.append(whole)
    return chunks


@dataclass(frozen=True, slots=True)
class PreparedQuery:
    """A query's embeddings and terms, computed once per definition."""

    query: str
    visual: np.ndarray | None  # [D] unit norm, None without a visual encoder
    text: np.ndarray | None  # [Dt] unit norm, None without a passage embedder
    terms: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class ChannelScores:
    visual_logit: float | None = None
    visual_probability: float | None = None
    text_score: float | None = None
    text_cosine: float | None = None
    keyword_overlap: float | None = None
    matched_terms: list[str] = field(default_factory=list)
    snippet: str = ""


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


class Scorer:
    def __init__(
        self,
        settings: ScoringSettings,
        visual: VisualTextEncoder | None = None,
        passages: PassageEmbedder | None = None,
    ) -> None:
        self.settings = settings
        self.visual = visual
        self.passages = passages

    def prepare(self, queries: Sequence[str]) -> list[PreparedQuery]:
        if not queries:
            return []
        vis = self.visual.embed_texts(list(queries)) if self.visual is not None else None
        txt = self.passages(list(queries)) if self.passages is not None else None
        return [
            PreparedQuery(
                q,
                None if vis is None else np.asarray(vis[i], np.float32),
                None if txt is None else np.asarray(txt[i], np.float32),
                query_terms(q),
            )
            for i, q in enumerate(queries)
        ]

    def score(
        self, embedding: np.ndarray, text: str, queries: Sequence[PreparedQuery]
    ) -> list[ChannelScores]:
        """One event (embedding [D], its text) against queries -> one ChannelScores per query."""
        logits = self._visual_logits(embedding, queries)
        cosines, chunks = self._text_cosines(text, queries)
        text_words = words(text)
        out = []
        for i, q in enumerate(queries):
            vis_logit = None if logits is None or q.visual is None else float(logits[i])
            scores: dict[str, Any] = {}
            if vis_logit is not None:
                scores.update(visual_logit=vis_logit, visual_probability=sigmoid(vis_logit))
            if text_words:
                overlap, found = keyword_overlap(q.terms, text_words)
                cos, snippet = self._best_chunk(cosines, chunks, i)
                best = max(overlap, cos if cos is not None else 0.0)
                scores.update(
                    text_score=best, text_cosine=cos, keyword_overlap=overlap, matched_terms=found,
                    snippet=snippet or text[:200],
                )  # fmt: skip
            out.append(ChannelScores(**scores))
        return out

    def _visual_logits(self, embedding: np.ndarray, queries: Sequence[PreparedQuery]) -> np.ndarray | None:
        rows = [q.visual for q in queries if q.visual is not None]
        if self.visual is None or not rows or embedding.shape[-1] != rows[0].shape[-1]:
            return (
                None  # no encoder, or an event from another encoder (dimension differs): no visual evidence
            )
        q_mat = np.stack([q.visual if q.visual is not None else np.zeros_like(rows[0]) for q in queries])
        cos = q_mat @ np.asarray(embedding, np.float32)  # [Q]
        return self.visual.logit_scale * cos + self.visual.logit_bias

    def _text_cosines(
        self, text: str, queries: Sequence[PreparedQuery]
    ) -> tuple[np.ndarray | None, list[str]]:
        chunks = text_chunks(text, self.settings.max_text_chunks) if text.strip() else []
        if self.passages is None or not chunks or all(q.text is None for q in queries):
            return None, chunks
        vectors = np.asarray(self.passages(chunks), np.float32)  # [C, Dt]
        q_mat = np.stack(
            [q.text if q.text is not None else np.zeros(vectors.shape[1], np.float32) for q in queries]
        )
        return q_mat @ vectors.T, chunks  # [Q, C]

    @staticmethod
    def _best_chunk(cosines: np.ndarray | None, chunks: list[str], i: int) -> tuple[float | None, str]:
        if cosines is None or not chunks:
            return None, ""
        j = int(np.argmax(cosines[i]))
        return float(cosines[i, j]), chunks[j]
