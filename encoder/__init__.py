"""encoder stage: the VLM's vision tower (tokens for the LLM) and a text-aligned retrieval encoder.

Heavy modules load on first use, so `import encoder` stays cheap and the records import anywhere.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import EncoderSettings
from .errors import EncoderError, FrameShapeError, ModelLoadError
from .records import EncodedFrame, GridTokens

if TYPE_CHECKING:
    from .batching import BatchingEncoder
    from .encoder import Encoder
    from .retrieval import RetrievalEncoder
    from .vision_tower import VisionTower

_LAZY = {
    "BatchingEncoder": ".batching",
    "Encoder": ".encoder",
    "RetrievalEncoder": ".retrieval",
    "VisionTower": ".vision_tower",
}

__all__ = [
    "BatchingEncoder",
    "EncodedFrame",
    "Encoder",
    "EncoderError",
    "EncoderSettings",
    "FrameShapeError",
    "GridTokens",
    "ModelLoadError",
    "RetrievalEncoder",
    "VisionTower",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'encoder' has no attribute {name!r}")
