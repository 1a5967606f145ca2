"""Hybrid search: one query over slide text, transcript and the visual bank, fused by reciprocal rank.

Each channel gives ranked lists: keyword (BM25) and embedding matches for `ocr` and `speech`, and
the caller's visual hits. An item's fused score is the weighted sum of 1 / (rrf_k + rank) over the
lists it appears in (reciprocal rank fusion, Cormack et al. 2009), so scores on different scales
(BM25, cosine, SigLIP) never have to be compared; each text contribution is scaled by the match's
strength within its own list (query-term coverage, cosine relative to the list's best), so a
chunk that shares one common word with the query does not earn a full rank-1 share. Items are
then grouped into time ranges per stream around the best item, and a range scores the best item of
each channel it holds, summed: agreement between channels counts, many chunks of one channel do not.
Scores are divided by the best score any item could get, so they lie in (0, 1].
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from encoder.text.config import SearchSettings
from encoder.text.records import TextChunk

from .records import Hit
from .text_index import TextIndex, TextIndexError, TextMatch, tokenize

CHANNELS = ("visual", "ocr", "speech")
_MIN_SHARED = 0.5  # an item joins a range when they share at least half of the shorter one


@dataclass(slots=True)
class _Item:
    key: str
    channel: str
    stream_id: str
    start_s: float
    end_s: float
    score: float = 0.0
    chunk: TextChunk | None = None
    visual: Hit | None = None
    matched_terms: set[str] = field(default_factory=set)


def hybrid_search(
    index: TextIndex | None,
    query: str,
    query_vector: np.ndarray | None,
    settings: SearchSettings,
    *,
    visual_hits: Sequence[Hit] = (),
    channels: Iterable[str] | None = None,
    stream_id: str | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    k: int = 10,
) -> list[Hit]:
    """Top-k time ranges for `query`. query_vector: [D] embedding of the query for the text index
    (None skips the embedding lists). visual_hits: ranked hits from the visual bank (their order is
    their rank). channels narrows to any of visual, ocr, speech."""
    wanted = _check_channels(channels)
    items: dict[str, _Item] = {}
    max_score = 0.0
    text_channels = [c for c in ("ocr", "speech") if c in wanted]
    if index is not None and text_channels:
        for channel in text_channels:
            scope: dict[str, Any] = {
                "stream_id": stream_id,
                "channels": [channel],
                "start_s": start_s,
                "end_s": end_s,
            }
            keyword = index.keyword_search(query, k=settings.per_list, **scope)
            max_score += _fuse_text(items, keyword, settings.keyword_weight, settings.rrf_k)
            if query_vector is not None:
                semantic = index.semantic_search(
                    query_vector, k=settings.per_list, min_score=settings.min_semantic_score, **scope
                )
                max_score += _fuse_text(items, semantic, settings.semantic_weight, settings.rrf_k)
    if "visual" in wanted:
        visual = [h for h in visual_hits if _in_scope(h, stream_id, start_s, end_s)][: settings.per_list]
        max_score += _fuse_visual(items, visual, settings.visual_weight, settings.rrf_k)
    if not items or max_score <= 0:
        return []
    groups = _group(items.values())
    hits = [_to_hit(group, max_score, query, settings) for group in groups]
    hits.sort(key=lambda h: (-h.score, h.stream_id, h.start_pts_s))
    return hits[:k]


def _check_channels(channels: Iterable[str] | None) -> set[str]:
    if channels is None:
        return set(CHANNELS)
    wanted = set(channels)
    unknown = wanted - set(CHANNELS)
    if unknown or not wanted:
        raise TextIndexError(
            f"search channels must be a non-empty subset of {list(CHANNELS)}, got {sorted(wanted)}"
        )
    return wanted


def _fuse_text(items: dict[str, _Item], matches: list[TextMatch], weight: float, rrf_k: float) -> float:
    """Adds each match's weight / (k + rank) to its item, scaled by how strong the match is for its
    list (keyword: the share of the query's term weight it covers; embedding: its cosine relative to
    the list's best), so a chunk that shares one common word with the query cannot take a whole
    rank-1 share. Returns the most this list can give one item."""
    if not matches or weight <= 0:
        return 0.0
    top = max(m.score for m in matches)
    for rank, match in enumerate(matches, start=1):
        c = match.chunk
        item = items.get(c.chunk_id)
        if item is None:
            item = _Item(c.chunk_id, c.channel, c.stream_id, c.start_pts_s, c.end_pts_s, chunk=c)
            items[c.chunk_id] = item
        strength = match.coverage if match.kind == "keyword" else (match.score / top if top > 0 else 0.0)
        item.score += weight * min(1.0, max(0.0, strength)) / (rrf_k + rank)
        item.matched_terms.update(match.matched_terms)
    return weight / (rrf_k + 1)


def _fuse_visual(items: dict[str, _Item], hits: list[Hit], weight: float, rrf_k: float) -> float:
    if not hits or weight <= 0:
        return 0.0
    for rank, hit in enumerate(hits, start=1):
        key = f"visual:{hit.stream_id}:{hit.event_id}"
        item = items.get(key)
        if item is None:
            item = _Item(key, "visual", hit.stream_id, hit.start_pts_s, hit.end_pts_s, visual=hit)
            items[key] = item
        item.score += weight / (rrf_k + rank)
    return weight / (rrf_k + 1)


def _in_scope(hit: Hit, stream_id: str | None, start_s: float | None, end_s: float | None) -> bool:
    if stream_id is not None and hit.stream_id != stream_id:
        return False
    if start_s is not None and hit.end_pts_s <= start_s:
        return False
    return not (end_s is not None and hit.start_pts_s >= end_s)


def _group(items: Iterable[_Item]) -> list[list[_Item]]:
    """Greedy, best first: an item joins the first range (anchored on a better item of the same
    stream) with which it shares at least half of the shorter of the two; otherwise it anchors a
    range of its own. A speech chunk joins the slide it was said over, but neighbouring slides that
    merely touch stay apart."""
    groups: list[list[_Item]] = []
    for item in sorted(items, key=lambda i: (-i.score, i.start_s, i.key)):
        for group in groups:
            anchor = group[0]
            if anchor.stream_id == item.stream_id and _shared(item, anchor) >= _MIN_SHARED:
                group.append(item)
                break
        else:
            groups.append([item])
    return groups


def _shared(a: _Item, b: _Item) -> float:
    """Overlap as a share of the shorter range (an instant: 1 inside the other range, else 0)."""
    overlap = min(a.end_s, b.end_s) - max(a.start_s, b.start_s)
    shorter = min(a.end_s - a.start_s, b.end_s - b.start_s)
    if shorter <= 0:
        return 1.0 if overlap >= 0 else 0.0
    return max(0.0, overlap) / shorter


def _to_hit(group: list[_Item], max_score: float, query: str, settings: SearchSettings) -> Hit:
    best_per_channel: dict[str, float] = {}
    for item in group:
        best_per_channel[item.channel] = max(best_per_channel.get(item.channel, 0.0), item.score)
    score = sum(best_per_channel.values()) / max_score
    anchor = group[0]
    # Text chunks are bounded by the slide they were read from or the speech itself; a visual event
    # may run up to the segmenter's longest length over several slides. Where both matched, the
    # result is the text's range, the place a student wants to jump to.
    ranged = [i for i in group if i.chunk is not None] or group
    start = min(i.start_s for i in ranged)
    end = max(i.end_s for i in ranged)
    channel = next(iter(best_per_channel)) if len(best_per_channel) == 1 else "fused"
    return Hit(
        event_id=_event_id(group),
        stream_id=anchor.stream_id,
        start_pts_s=start,
        end_pts_s=end,
        start_wall_s=_first([_wall(i, start=True) for i in ranged], min),
        end_wall_s=_first([_wall(i, start=False) for i in ranged], max),
        score=round(min(1.0, score), 6),
        channel=channel,
        snippet=_snippet(group, query, settings.snippet_words),
        thumbnail_path=next((t for t in (_thumbnail(i) for i in group) if t), None),
    )


def _event_id(group: list[_Item]) -> str:
    for item in group:
        if item.visual is not None:
            return item.visual.event_id
        if item.chunk is not None and item.chunk.event_id:
            return item.chunk.event_id
    a = group[0]
    return f"{a.stream_id}@{a.start_s:.3f}-{a.end_s:.3f}"


def _wall(item: _Item, *, start: bool) -> float | None:
    if item.visual is not None:
        return item.visual.start_wall_s if start else item.visual.end_wall_s
    assert item.chunk is not None
    return item.chunk.start_wall_s if start else item.chunk.end_wall_s


def _first(values: list[float | None], pick: object) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None  # type: ignore[operator]


def _thumbnail(item: _Item) -> str | None:
    if item.visual is not None:
        return item.visual.thumbnail_path
    return item.chunk.thumbnail_path if item.chunk is not None else None


def _snippet(group: list[_Item], query: str, words: int) -> str:
    """The best text item's words around its first query term, matched words in **bold**."""
    text_items = [i for i in group if i.chunk is not None]
    if not text_items:
        return group[0].visual.snippet if group[0].visual is not None else ""
    item = max(text_items, key=lambda i: (len(i.matched_terms), i.score))
    assert item.chunk is not None
    terms = set(item.matched_terms) | set(tokenize(query))
    return highlight(item.chunk.text, terms, words, prefix=f"{item.channel}: ")


def highlight(text: str, terms: set[str], max_words: int, prefix: str = "") -> str:
    """A window of max_words around the first word whose terms match, matched words in **bold**."""
    tokens = text.split()
    marks = [bool(terms & set(tokenize(t))) for t in tokens]
    first = marks.index(True) if True in marks else 0
    lo = max(0, min(first - max_words // 3, len(tokens) - max_words))
    window = [
        f"**{t}**" if m else t
        for t, m in zip(tokens[lo : lo + max_words], marks[lo : lo + max_words], strict=True)
    ]
    lead = "... " if lo > 0 else ""
    tail = " ..." if lo + max_words < len(tokens) else ""
    return prefix + lead + re.sub(r"\s+", " ", " ".join(window)) + tail


@dataclass(frozen=True, slots=True)
class TextEvidence:
    """Slide text or transcript for an LLM prompt, with where it was shown or said."""

    channel: str  # "ocr" | "speech"
    start_pts_s: float
    end_pts_s: float
    text: str
    score: float  # fused relevance to the question; 0 when everything in scope fits


def lecture_context(
    index: TextIndex,
    question: str,
    question_vector: np.ndarray | None,
    settings: SearchSettings,
    *,
    stream_id: str,
    start_s: float | None = None,
    end_s: float | None = None,
    max_chars: int = 3000,
) -> list[TextEvidence]:
    """The slide text and transcript of a time scope that bear on `question`, in time order.

    When everything in scope fits in max_chars it all goes in (the model sees the whole scope);
    otherwise chunks are taken by fused keyword + embedding relevance until the budget is spent.
    """
    scope: dict[str, Any] = {"stream_id": stream_id, "start_s": start_s, "end_s": end_s}
    chunks = index.chunks_in(**scope)
    if sum(len(c.text) for c in chunks) <= max_chars:
        return [TextEvidence(c.channel, c.start_pts_s, c.end_pts_s, c.text, 0.0) for c in chunks]
    items: dict[str, _Item] = {}
    everything = len(chunks)
    _fuse_text(
        items, index.keyword_search(question, k=everything, **scope), settings.keyword_weight, settings.rrf_k
    )
    if question_vector is not None:
        semantic = index.semantic_search(
            question_vector, k=everything, min_score=settings.min_semantic_score, **scope
        )
        _fuse_text(items, semantic, settings.semantic_weight, settings.rrf_k)
    chosen, used = [], 0
    for item in sorted(items.values(), key=lambda i: (-i.score, i.start_s)):
        assert item.chunk is not None
        if used + len(item.chunk.text) > max_chars:
            continue
        chosen.append(item)
        used += len(item.chunk.text)
    chosen.sort(key=lambda i: (i.start_s, i.channel))
    return [
        TextEvidence(i.channel, i.start_s, i.end_s, i.chunk.text, round(i.score, 6))
        for i in chosen
        if i.chunk is not None
    ]


def format_context(evidence: Sequence[TextEvidence]) -> str:
    """One line per piece: `[12:30-13:05] slide: ...` / `[12:31-12:50] speech: ...`."""
    label = {"ocr": "slide", "speech": "speech"}
    lines = []
    for e in evidence:
        text = re.sub(r"\s+", " ", e.text).strip()
        lines.append(
            f"[{_clock(e.start_pts_s)}-{_clock(e.end_pts_s)}] {label.get(e.channel, e.channel)}: {text}"
        )
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
