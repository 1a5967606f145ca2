"""Getting frames in: files (sequential and QuickDecoder-style parallel), RTSP, webcams, HLS."""

from ._av import OutputSize
from .errors import (
    CorruptMediaError,
    IngestError,
    SourceOpenError,
    StreamStalledError,
    UnsupportedSourceError,
)
from .live import LiveReader
from .quickdecoder import decode_file
from .records import Frame, Gap, StreamHealth, StreamState
from .sources import FileSource, LiveSource, Source, open_source

__all__ = [
    "CorruptMediaError",
    "FileSource",
    "Frame",
    "Gap",
    "IngestError",
    "LiveReader",
    "LiveSource",
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
