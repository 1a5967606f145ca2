"""Thin helpers over PyAV shared by the file, parallel and live paths."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from .errors import NotVideoError, SourceOpenError

# Decoders that FFmpeg will happily "open" from text or images: not video for our purposes.
_NOT_VIDEO_CODECS = frozenset({"ansi", "bintext", "xbin", "idf", "tty"})


@dataclass(frozen=True, slots=True)
class OutputSize:
    """How kept frames are resized: an exact size, or the longer side capped."""

    width: int | None = None
    height: int | None = None
    max_side_px: int | None = None

    def resolve(self, src_width: int, src_height: int) -> tuple[int, int] | None:
        """(width, height) to convert to, or None to keep the source size."""
        if self.width is not None and self.height is not None:
            return (self.width, self.height)
        if self.max_side_px is not None and max(src_width, src_height) > self.max_side_px:
            scale = self.max_side_px / max(src_width, src_height)
            return (max(2, round(src_width * scale)), max(2, round(src_height * scale)))
        return None


def open_container(
    target: str,
    *,
    options: dict[str, str] | None = None,
    format: str | None = None,
    timeout_s: tuple[float, float] | None = None,
) -> Any:
    """av.open with errors that say what was opened and why it failed."""
    try:
        return av.open(target, mode="r", format=format, options=options or {}, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise SourceOpenError(f"no such file: {target}") from exc
    except av.error.InvalidDataError as exc:
        raise SourceOpenError(f"not a readable media file: {target} ({exc})") from exc
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceOpenError(f"cannot open {target}: {exc}") from exc


def video_stream(container: Any, target: str) -> Any:
    """The first video stream, or a clear error naming what the container holds instead."""
    streams = list(container.streams.video)
    kinds = sorted({s.type for s in container.streams})
    if not streams:
        raise NotVideoError(f"no video stream in {target} (it holds: {', '.join(kinds) or 'nothing'})")
    stream = streams[0]
    name = stream.codec_context.name if stream.codec_context is not None else None
    if name in _NOT_VIDEO_CODECS or (stream.codec_context.width or 0) <= 0:
        raise NotVideoError(f"not a video file: {target} (FFmpeg read it as {name!r})")
    return stream


def configure_decoder(stream: Any, threads: int) -> None:
    """threads=1: one decoder thread (parallel workers); 0: FFmpeg's automatic threading."""
    ctx = stream.codec_context
    if threads == 1:
        ctx.thread_type = "NONE"
        ctx.thread_count = 1
    else:
        ctx.thread_type = "AUTO"
        ctx.thread_count = threads  # 0 lets FFmpeg pick one per core


def to_rgb(frame: Any, size: OutputSize) -> np.ndarray:
    """Convert (and resize) one decoded frame to [H, W, 3] uint8."""
    wh = size.resolve(frame.width, frame.height)
    if wh is None:
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", width=wh[0], height=wh[1])


def time_base_of(stream: Any) -> Fraction:
    tb = stream.time_base
    if tb is None:
        raise SourceOpenError("video stream has no time base")
    return Fraction(tb.numerator, tb.denominator)


def promised_end_s(container: Any, stream: Any) -> float | None:
    """Where the header says the video ends (None when it does not say).

    The container's duration is trusted only when the video is its only stream: otherwise it
    may be an audio track's, longer than the video.
    """
    if stream.duration is not None and stream.time_base is not None:
        start = stream.start_time or 0
        return float((start + stream.duration) * stream.time_base)
    if container.duration is not None and len(container.streams) == 1:
        start_s = (container.start_time or 0) / 1_000_000
        return start_s + container.duration / 1_000_000
    return None


def decode_until_error(container: Any, stream: Any) -> Iterator[Any]:
    """Decoded frames in presentation order. On damaged data the decoder is drained first (so
    frame-threaded and single-threaded decoding yield the same frames), then the error is raised."""
    error: av.error.FFmpegError | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end marker; the drain below flushes the decoder
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                error = exc
                break
            yield from frames
    except av.error.FFmpegError as exc:
        error = exc
    with contextlib.suppress(av.error.FFmpegError):  # a decoder that already failed has nothing more
        yield from stream.codec_context.decode(None)
    if error is not None:
        raise error
