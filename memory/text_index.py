"""The text index: transcript and slide-text chunks, searchable by meaning (FAISS, inner product on
unit vectors) and by exact terms (BM25), persisted under one directory.

Self-contained beside the visual event bank. Storage is two append-only files written through
on every `add`: `chunks.jsonl` (one chunk per line) and `vectors.f32` (one row of D float32 per
chunk, same order). On open, a torn tail (a crash mid-append) is cut back to the rows both files
hold; the FAISS index and the keyword index are rebuilt in memory (cheap at lecture scale).
The index stores vectors; it does not know which model made them.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from encoder.text.records import CHANNELS_TEXT, TextChunk

_BM25_K1 = 1.2
_BM25_B = 0.75
_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "all",
        "also",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "do",
        "does",
        "each",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "more",
        "most",
        "not",
        "of",
        "on",
        "only",
        "or",
        "our",
        "over",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whose",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)
# A "compound" keeps formula and name punctuation inside a token: E=mc^2, C6H12O6, x86-64, O'Neil.
_COMPOUND = re.compile(r"[^\W_]+(?:[=+^.\-/'][^\W_]+)*")
_PART = re.compile(r"[^\W_]+")


class TextIndexError(Exception):
    """The text index was asked something it cannot do; the message names the bad value."""


def tokenize(text: str) -> list[str]:
    """Lower-cased terms for BM25: each compound token (E=mc^2), plus its alphanumeric parts when it
    has several, so an exact formula matches exactly and its pieces still match loosely.
    Plural -s is stripped (cells -> cell); stopwords are dropped."""
    terms: list[str] = []
    for compound in _COMPOUND.findall(unicodedata.normalize("NFKC", text).lower()):
        parts = _PART.findall(compound)
        for term in [compound, *parts] if len(parts) > 1 else parts:
            if term not in _STOPWORDS:
                terms.append(_light_stem(term))
    return terms


def _light_stem(term: str) -> str:
    if len(term) > 3 and term.endswith("s") and not term.endswith("ss") and term.isalpha():
        return term[:-1]
    return term


@dataclass(frozen=True, slots=True)
class TextMatch:
    chunk: TextChunk
    score: float  # BM25 score, or cosine for semantic matches
    kind: str  # "keyword" | "semantic"
    matched_terms: tuple[str, ...] = ()
    coverage: float = 1.0  # keyword: share of the query's term weight (IDF) this chunk matched


class KeywordIndex:
    """Okapi BM25 over an inverted index (rows are integer ids, appended in order)."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[int, int]] = defaultdict(dict)
        self._lengths: list[int] = []
        self._total_length = 0

    def add(self, text: str) -> int:
        row = len(self._lengths)
        counts = Counter(tokenize(text))
        for term, tf in counts.items():
            self._postings[term][row] = tf
        length = sum(counts.values())
        self._lengths.append(length)
        self._total_length += length
        return row

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float, tuple[str, ...], float]]:
        """(row, score, matched terms, coverage) of the k best rows with at least one query term.

        coverage: the matched terms' share of the IDF of all query terms the index knows, so a
        chunk that matches one common word of a five-word query is told apart from one that
        matches all five. allowed: [rows] bool mask; False rows are skipped.
        """
        n = len(self._lengths)
        if n == 0:
            return []
        avg_len = self._total_length / n
        scores: dict[int, float] = defaultdict(float)
        matched: dict[int, list[str]] = defaultdict(list)
        weight: dict[int, float] = defaultdict(float)
        query_weight = 0.0
        for term in dict.fromkeys(tokenize(query)):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            query_weight += idf
            for row, tf in postings.items():
                if allowed is not None and not allowed[row]:
                    continue
                norm = tf + _BM25_K1 * (1 - _BM25_B + _BM25_B * self._lengths[row] / avg_len)
                scores[row] += idf * tf * (_BM25_K1 + 1) / norm
                matched[row].append(term)
                weight[row] += idf
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [(row, score, tuple(matched[row]), weight[row] / query_weight) for row, score in best]


class TextIndex:
    """Chunks of one or many streams, with a FAISS index and a BM25 index over the same rows."""

    def __init__(self, directory: str | Path, dim: int, *, durable: bool = False) -> None:
        """durable: fsync after every add (a power cut loses nothing acknowledged)."""
        import faiss

        if dim <= 0:
            raise TextIndexError(f"embedding dim must be > 0, got {dim}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dim = dim
        self._durable = durable
        self._faiss = faiss
        self._check_meta()
        self._load()

    # ---- writing -------------------------------------------------------------------------

    def add(self, chunks: Sequence[TextChunk], vectors: np.ndarray) -> int:
        """Append chunks with their embeddings ([N, D] float32, unit length); returns how many were new.

        Chunks already present (same chunk_id) are skipped, so re-ingesting a video is harmless.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dim):
            raise TextIndexError(f"vectors must be [{len(chunks)}, {self.dim}], got {list(vectors.shape)}")
        fresh = [i for i, c in enumerate(chunks) if c.chunk_id not in self._ids]
        if not fresh:
            return 0
        new_chunks = [chunks[i] for i in fresh]
        new_vectors = np.ascontiguousarray(vectors[fresh])
        with (
            open(self._chunks_path, "a", encoding="utf-8") as f_chunks,
            open(self._vectors_path, "ab") as f_vec,
        ):
            f_vec.write(new_vectors.tobytes())
            f_chunks.write("".join(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in new_chunks))
            if self._durable:
                for f in (f_vec, f_chunks):
                    f.flush()
                    os.fsync(f.fileno())
        self._append_memory(new_chunks, new_vectors)
        return len(new_chunks)

    def remove_stream(self, stream_id: str) -> int:
        """Drop every chunk of a stream (rewrites the files atomically); returns how many went."""
        keep = [i for i, c in enumerate(self._chunks) if c.stream_id != stream_id]
        removed = len(self._chunks) - len(keep)
        if removed:
            chunks = [self._chunks[i] for i in keep]
            vectors = self._vectors[keep] if keep else np.zeros((0, self.dim), np.float32)
            self._rewrite(chunks, vectors)
            self._reset_memory()
            self._append_memory(chunks, vectors)
        return removed

    # ---- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._chunks)

    def keyword_search(
        self,
        query: str,
        *,
        k: int = 10,
        stream_id: str | None = None,
        channels: Iterable[str] | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> list[TextMatch]:
        allowed = self._mask(stream_id, channels, start_s, end_s)
        return [
            TextMatch(self._chunks[row], round(score, 6), "keyword", terms, round(coverage, 6))
            for row, score, terms, coverage in self._keywords.search(query, k, allowed)
        ]

    def semantic_search(
        self,
        query_vector: np.ndarray,
        *,
        k: int = 10,
        min_score: float = -1.0,
        stream_id: str | None = None,
        channels: Iterable[str] | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> list[TextMatch]:
        """query_vector: [D] unit vector from the same model as the chunks'."""
        q = np.asarray(query_vector, np.float32).reshape(1, -1)
        if q.shape[1] != self.dim:
            raise TextIndexError(f"query vector must have {self.dim} dims, got {q.shape[1]}")
        if not self._chunks:
            return []
        allowed = self._mask(stream_id, channels, start_s, end_s)
        params, selector = None, None
        if allowed is not None:
            rows = np.flatnonzero(allowed).astype(np.int64)
            if rows.size == 0:
                return []
            # Keep the selector referenced until the search returns: params does not own it.
            selector = self._faiss.IDSelectorBatch(rows)
            params = self._faiss.SearchParameters()
            params.sel = selector
        scores, rows_found = self._index.search(q, min(k, len(self._chunks)), params=params)
        del selector
        return [
            TextMatch(self._chunks[int(row)], round(float(score), 6), "semantic")
            for score, row in zip(scores[0], rows_found[0], strict=True)
            if row >= 0 and score >= min_score
        ]

    def chunks_in(
        self,
        *,
        stream_id: str | None = None,
        channels: Iterable[str] | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> list[TextChunk]:
        """Chunks overlapping the scope, in time order."""
        allowed = self._mask(stream_id, channels, start_s, end_s)
        rows = range(len(self._chunks)) if allowed is None else np.flatnonzero(allowed).tolist()
        return sorted((self._chunks[r] for r in rows), key=lambda c: (c.stream_id, c.start_pts_s, c.channel))

    # ---- internals -----------------------------------------------------------------------

    @property
    def _chunks_path(self) -> Path:
        return self.directory / "chunks.jsonl"

    @property
    def _vectors_path(self) -> Path:
        return self.directory / "vectors.f32"

    def _check_meta(self) -> None:
        meta_path = self.directory / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("dim") != self.dim:
                raise TextIndexError(
                    f"text index at {self.directory} holds {meta.get('dim')}-dim vectors, not {self.dim}"
                )
        else:
            meta_path.write_text(json.dumps({"dim": self.dim, "format": 1}))

    def _reset_memory(self) -> None:
        self._chunks: list[TextChunk] = []
        self._ids: set[str] = set()
        self._vectors = np.zeros((0, self.dim), np.float32)
        self._index = self._faiss.IndexFlatIP(self.dim)
        self._keywords = KeywordIndex()
        self._streams: list[str] = []
        self._channels = np.zeros(0, dtype="<U8")
        self._starts = np.zeros(0, np.float64)
        self._ends = np.zeros(0, np.float64)

    def _append_memory(self, chunks: Sequence[TextChunk], vectors: np.ndarray) -> None:
        for c in chunks:
            self._chunks.append(c)
            self._ids.add(c.chunk_id)
            self._keywords.add(c.text)
            self._streams.append(c.stream_id)
        self._vectors = np.concatenate([self._vectors, vectors]) if len(self._vectors) else vectors.copy()
        self._index.add(vectors)
        self._channels = np.concatenate([self._channels, np.array([c.channel for c in chunks], dtype="<U8")])
        self._starts = np.concatenate([self._starts, [c.start_pts_s for c in chunks]])
        self._ends = np.concatenate([self._ends, [c.end_pts_s for c in chunks]])

    def _load(self) -> None:
        self._reset_memory()
        if not self._chunks_path.exists():
            return
        raw = self._vectors_path.read_bytes() if self._vectors_path.exists() else b""
        row_bytes = 4 * self.dim
        lines = self._chunks_path.read_text(encoding="utf-8").splitlines(keepends=True)
        complete = [line for line in lines if line.endswith("\n")]
        rows = min(len(complete), len(raw) // row_bytes)
        chunks = []
        for line in complete[:rows]:
            try:
                chunks.append(TextChunk(**json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError):
                break  # a damaged line: keep the clean prefix
        vectors = (
            np.frombuffer(raw[: len(chunks) * row_bytes], np.float32).reshape(len(chunks), self.dim).copy()
        )
        if len(chunks) != len(lines) or len(raw) != len(chunks) * row_bytes:
            self._rewrite(chunks, vectors)  # cut a torn tail so later appends line up
        self._append_memory(chunks, vectors)

    def _rewrite(self, chunks: Sequence[TextChunk], vectors: np.ndarray) -> None:
        for path, payload in (
            (self._vectors_path, np.ascontiguousarray(vectors, np.float32).tobytes()),
            (
                self._chunks_path,
                "".join(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in chunks).encode(),
            ),
        ):
            tmp = path.with_suffix(path.suffix + ".tmp")
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

    def _mask(
        self,
        stream_id: str | None,
        channels: Iterable[str] | None,
        start_s: float | None,
        end_s: float | None,
    ) -> np.ndarray | None:
        """[rows] bool, or None when nothing is filtered."""
        n = len(self._chunks)
        mask = np.ones(n, bool)
        filtered = False
        if stream_id is not None:
            mask &= np.array([s == stream_id for s in self._streams], bool) if n else mask
            filtered = True
        if channels is not None:
            wanted = set(channels)
            unknown = wanted - set(CHANNELS_TEXT)
            if unknown:
                raise TextIndexError(
                    f"unknown text channels {sorted(unknown)}; allowed: {list(CHANNELS_TEXT)}"
                )
            mask &= np.isin(self._channels, list(wanted))
            filtered = True
        if start_s is not None:
            mask &= self._ends > start_s
            filtered = True
        if end_s is not None:
            mask &= self._starts < end_s
            filtered = True
        return mask if filtered else None
