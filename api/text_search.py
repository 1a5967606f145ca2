"""Search over slide text and speech (OCR/ASR chunks in a `memory.text_index.TextIndex`) fused with
the visual bank's hits by `memory.hybrid.hybrid_search`. The service uses it when a text index
exists under `<data_dir>/text`; otherwise search is visual only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory import Hit

from .questions import Scope

TEXT_INDEX_DIR = "text"


class HybridTextSearch:
    def __init__(self, index: Any, embed: Callable[[Sequence[str]], np.ndarray], settings: Any) -> None:
        self.index = index  # memory.text_index.TextIndex
        self.embed = embed  # texts -> [N, D] unit rows, the index's embedding model (MiniLM)
        self.settings = settings  # encoder.text.config.SearchSettings

    def __call__(
        self, query: str, visual_hits: Sequence[Hit], scope: Scope, k: int, channels: Sequence[str] | None
    ) -> list[Hit]:
        from memory.hybrid import hybrid_search

        streams = scope.streams
        one = streams[0] if streams and len(streams) == 1 else None
        hits = hybrid_search(
            self.index,
            query,
            self.embed([query])[0],
            self.settings,
            visual_hits=visual_hits,
            channels=channels,
            stream_id=one,
            start_s=scope.since,
            end_s=scope.until,
            k=k if not streams or one else k * 4,
        )
        if streams and not one:
            hits = [h for h in hits if h.stream_id in streams][:k]
        return hits


def open_text_search(data_dir: Path, text_settings: Any | None) -> HybridTextSearch | None:
    """The hybrid search over `<data_dir>/text` when that index exists, else None."""
    folder = Path(data_dir) / TEXT_INDEX_DIR
    if not folder.is_dir():
        return None
    from encoder.text import TextEmbedder
    from encoder.text.config import IndexSettings, SearchSettings
    from memory.text_index import TextIndex

    embedder = TextEmbedder(getattr(text_settings, "index", None) or IndexSettings())
    index = TextIndex(folder, embedder.dim)
    return HybridTextSearch(
        index, embedder.encode, getattr(text_settings, "search", None) or SearchSettings()
    )
