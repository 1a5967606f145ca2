"""`open_source`: one entry point for files, http(s) files, HLS, RTSP and webcams."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Protocol

from ._av import OutputSize
from .config import IngestSettings
from .errors import IngestError
from .filesource import iter_file_frames
from .live import LiveReader
from .records import Frame, StreamHealth, StreamState
from .uris import SourceKind, SourceSpec, default_stream_id, is_live_playlist, parse_source


class Source(Protocol):
    """An iterable of `Frame`s with health and an idempotent close."""

    stream_id: str
    uri: str
    is_live: bool

    def __iter__(self) -> Iterator[Frame]: ...

    def health(self) -> StreamHealth: ...

    def close(self) -> None: ...


class FileSource:
    """A finite source decoded front to back. Never drops: a slow consumer makes it wait."""

    is_live = False

    def __init__(
        self,
        spec: SourceSpec,
        *,
        stream_id: str,
        fps: float | None,
        size: OutputSize,
        settings: IngestSettings,
        decoder_threads: int = 0,
    ) -> None:
        self.spec = spec
        self.uri = spec.uri
        self.stream_id = stream_id
        self._fps = fps
        self._size = size
        self._settings = settings
        self._decoder_threads = decoder_threads
        self._health = StreamHealth(stream_id=stream_id, uri=spec.uri)
        self._frames: Iterator[Frame] | None = None

    def __iter__(self) -> Iterator[Frame]:
        timeout = (
            (self._settings.connect_timeout_s, self._settings.read_timeout_s)
            if self.spec.is_network
            else None
        )
        self._frames = iter_file_frames(
            self.spec.target,
            fps=self._fps,
            size=self._size,
            stream_id=self.stream_id,
            decoder_threads=self._decoder_threads,
            timeout_s=timeout,
        )
        self._health.state = StreamState.LIVE
        try:
            for frame in self._frames:
                self._health.frames += 1
                yield frame
        except IngestError as exc:
            self._health.state = StreamState.FAILED
            self._health.last_error = str(exc)
            raise
        self._health.state = StreamState.ENDED

    def health(self) -> StreamHealth:
        return copy.deepcopy(self._health)

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]
        if self._health.state not in (StreamState.FAILED, StreamState.ENDED):
            self._health.state = StreamState.ENDED

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveSource:
    """A live stream read in the background; iteration ends when the reader fails or is closed."""

    is_live = True

    def __init__(self, reader: LiveReader) -> None:
        self.reader = reader
        self.uri = reader.spec.uri
        self.stream_id = reader.stream_id

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.reader)

    def health(self) -> StreamHealth:
        return self.reader.health()

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> LiveSource:
        self.reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(
    uri: str,
    *,
    fps: float | None = 1.0,
    stream_id: str | None = None,
    max_side_px: int | None = None,
    size: tuple[int, int] | None = None,
    settings: IngestSettings | None = None,
) -> FileSource | LiveSource:
    """Open a file, http(s) file, HLS playlist, RTSP stream or webcam as a source of `Frame`s.

    fps: keep the frame nearest each instant first_pts + k / fps; None keeps every frame.
    size=(width, height) or max_side_px resize kept frames.
    Raises UnsupportedSourceError / SourceOpenError at once for what can never work; live
    sources report later trouble through `health()` and keep reconnecting.
    """
    settings = settings or IngestSettings()
    spec = parse_source(uri, allowed_schemes=settings.allowed_schemes)
    stream_id = stream_id or default_stream_id(spec.uri)
    if size is not None and (len(size) != 2 or min(size) < 2):
        raise ValueError(f"size must be (width, height) with both >= 2, got {size!r}")
    out = OutputSize(
        width=size[0] if size else None,
        height=size[1] if size else None,
        max_side_px=max_side_px if max_side_px is not None else settings.max_side_px,
    )
    is_live = spec.kind in (SourceKind.RTSP, SourceKind.WEBCAM) or (
        spec.kind == SourceKind.HLS and is_live_playlist(spec, settings.connect_timeout_s)
    )
    if is_live:
        return LiveSource(LiveReader(spec, stream_id=stream_id, fps=fps, size=out, settings=settings))
    return FileSource(spec, stream_id=stream_id, fps=fps, size=out, settings=settings)
