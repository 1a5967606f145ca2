"""Sequential decoding of one file (local path or http(s) URL): the reference every other path matches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av

from ._av import (
    OutputSize,
    configure_decoder,
    decode_until_error,
    open_container,
    promised_end_s,
    time_base_of,
    to_rgb,
    video_stream,
)
from .errors import CorruptMediaError
from .records import Frame
from .sampling import NearestSampler

# A file whose frames stop this much before the end its header promises is truncated.
TRUNCATION_SLACK_S = 1.0


def iter_file_frames(
    target: str,
    *,
    fps: float | None,
    size: OutputSize = OutputSize(),
    stream_id: str = "file",
    decoder_threads: int = 0,
    timeout_s: tuple[float, float] | None = None,
) -> Iterator[Frame]:
    """Decode `target` front to back, yielding the sampled frames.

    Only kept frames are converted to RGB. Damaged data ends the iteration with
    `CorruptMediaError` after every frame before the damage has been yielded.
    """
    container = open_container(target, timeout_s=timeout_s)
    try:
        stream = video_stream(container, target)
        configure_decoder(stream, decoder_threads)
        time_base = time_base_of(stream)
        sampler: NearestSampler[Any] = NearestSampler(fps)
        index = 0
        last_pts_s: float | None = None

        def emit(decided: list[Any]) -> Iterator[Frame]:
            nonlocal index
            for frame in decided:
                yield Frame(stream_id, index, frame.pts, time_base, to_rgb(frame, size))
                index += 1

        try:
            for frame in decode_until_error(container, stream):
                if frame.pts is None:
                    continue  # no presentation time: cannot be placed on the timeline
                pts_s = float(frame.pts * time_base)
                if last_pts_s is not None and pts_s <= last_pts_s:
                    continue  # a repeated timestamp; the demux plan dedups the same way
                last_pts_s = pts_s
                yield from emit(sampler.offer(pts_s, frame))
        except av.error.FFmpegError as exc:
            yield from emit(sampler.flush())
            raise damaged_error(target, exc, last_pts_s, index) from exc
        yield from emit(sampler.flush())
        check_complete(target, last_pts_s, promised_end_s(container, stream), index)
    finally:
        container.close()


def damaged_error(target: str, exc: Exception, last_pts_s: float | None, kept: int) -> CorruptMediaError:
    where = "the start" if last_pts_s is None else f"{last_pts_s:.3f} s"
    return CorruptMediaError(
        f"{target}: damaged data after {where} ({kept} kept frames were yielded): {exc}",
        position_s=last_pts_s,
        frames_yielded=kept,
    )


def check_complete(target: str, last_pts_s: float | None, promised_end: float | None, kept: int) -> None:
    """Raise when the video had no frame at all, or stops well before its header's end."""
    if last_pts_s is None:
        raise CorruptMediaError(
            f"{target}: no decodable video frame (no keyframe, or damaged data)",
            position_s=None,
            frames_yielded=0,
        )
    if promised_end is not None and last_pts_s < promised_end - TRUNCATION_SLACK_S:
        raise CorruptMediaError(
            f"{target}: truncated: video ends at {last_pts_s:.3f} s but its header promises "
            f"{promised_end:.3f} s ({kept} kept frames were yielded)",
            position_s=last_pts_s,
            frames_yielded=kept,
        )
