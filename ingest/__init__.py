"""Getting frames in: files (sequential and QuickDecoder-style parallel), RTSP, webcams, HLS.

Decoding needs PyAV; it loads on first use, so `ingest.config` and the records import anywhere
(the settings object imports them on machines without PyAV).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptMediaError,
    IngestError,
    NotVideoError,
    SourceOpenError,
    StreamStalledError,
    UnsupportedSourceError,
)
from .records import Frame, Gap, StreamHealth, StreamState

if TYPE_CHECKING:
    from ._av import OutputSize
    from .live import LiveReader
    from .quickdecoder import decode_file
    from .sources import FileSource, LiveSource, Source, open_source

_LAZY = {
    "OutputSize": "._av",
    "LiveReader": ".live",
    "decode_file": ".quickdecoder",
    "FileSource": ".sources",
    "LiveSource": ".sources",
    "Source": ".sources",
    "open_source": ".sources",
}

__all__ = [
    "CorruptMediaError",
    "FileSource",
    "Frame",
    "Gap",
    "IngestError",
    "LiveReader",
    "LiveSource",
    "NotVideoError",
    "OutputSize",
    "Source",
    "SourceOpenError",
    "StreamHealth",
    "StreamStalledError",
    "StreamState",
    "UnsupportedSourceError",
    "decode_file",
    "open_source",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
