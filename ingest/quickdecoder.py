"""QuickDecoder-style parallel file decoding.

Demux once for every frame's pts and the keyframes, decide the kept frames with the same
sampling rule as the sequential path, cut the timeline into keyframe-aligned intervals (a few
per worker), and let each worker seek to its interval and decode it with one thread,
converting only kept frames. Frames come out in order as soon as the head interval has them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from ._av import OutputSize, configure_decoder, open_container, to_rgb, video_stream
from ._executors import IntervalExecutor, make_executor
from ._plan import DecodePlan, Interval, cut_intervals, demux_plan, kept_frames
from .errors import IngestError
from .filesource import check_complete, damaged_error
from .records import Frame


@dataclass(frozen=True, slots=True)
class IntervalEnd:
    """The last item a worker sends: how its interval went."""

    number: int
    last_pts: int | None  # the last frame decoded inside the interval
    error: str | None = None  # damaged data: decoding stopped after last_pts
    mismatch: str | None = None  # the decoder disagreed with the demux plan


def decode_interval(
    target: str, interval: Interval, size: OutputSize
) -> Iterator[tuple[int, np.ndarray] | IntervalEnd]:
    """Decode one interval with one thread; yield (pts, rgb) for kept frames, then an IntervalEnd.

    Only the work the kept frames need is done: packets after the last kept frame of a closed
    GOP are not sent to the decoder, and non-reference frames that are not kept are skipped
    inside it. Skipped frames are never referenced, so kept frames decode bit for bit as in a
    full sequential decode.

    A frame kept only because of a sample instant after it (see `NearestSampler.offer_marked`)
    is held until the next frame decodes: at damaged data the sequential path drops it too.
    """
    container = open_container(target)
    try:
        stream = video_stream(container, target)
        configure_decoder(stream, threads=1)
        if interval.number > 0:
            container.seek(interval.start_pts, stream=stream, backward=True, any_frame=False)
        yield from _decode_kept(container, stream, interval, size)
    finally:
        container.close()


def _decode_kept(
    container: Any, stream: Any, interval: Interval, size: OutputSize
) -> Iterator[tuple[int, np.ndarray] | IntervalEnd]:
    planned = set(interval.frame_pts)
    delivered = 0
    last_pts: int | None = None
    held: tuple[int, Any] | None = None
    for frame in _sent_and_decoded(container, stream, interval):
        if isinstance(frame, IntervalEnd):
            yield dataclasses.replace(frame, last_pts=last_pts)  # damaged data: `held` is dropped
            return
        pts = frame.pts
        if pts is None or pts < interval.start_pts or (last_pts is not None and pts <= last_pts):
            continue  # leading frames of an open GOP belong to the previous interval
        if interval.end_pts is not None and pts >= interval.end_pts:
            break
        if pts not in planned:
            yield IntervalEnd(
                interval.number, last_pts, mismatch=f"decoded pts {pts} is not in the demux plan"
            )
            return
        last_pts = pts
        if held is not None:
            yield (held[0], to_rgb(held[1], size))
            held = None
        if pts in interval.kept:
            delivered += 1
            if interval.kept[pts]:
                held = (pts, frame)
            else:
                yield (pts, to_rgb(frame, size))
    if held is not None:
        yield (held[0], to_rgb(held[1], size))
    missing = len(interval.kept) - delivered
    yield IntervalEnd(
        interval.number, last_pts, mismatch=f"{missing} kept frames never decoded" if missing else None
    )


def _sent_and_decoded(container: Any, stream: Any, interval: Interval) -> Iterator[Any]:
    """Decoded frames of the interval, sending the decoder only what kept frames need.

    Ends with an IntervalEnd(error=...) item on damaged data, after draining the decoder.
    """
    codec = stream.codec_context
    is_closed_gops = bool(interval.gop_packets)
    budget = -1  # packets still to send in this GOP; negative means no limit
    error: str | None = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.is_keyframe and packet.pts is not None:
                if is_closed_gops and interval.end_pts is not None and packet.pts >= interval.end_pts:
                    break  # closed GOPs: everything presented before end_pts was sent already
                budget = interval.gop_packets.get(packet.pts, -1)
            if budget == 0:
                continue
            budget -= 1 if budget > 0 else 0
            codec.skip_frame = "DEFAULT" if packet.pts in interval.kept else "NONREF"
            try:
                yield from packet.decode()
            except av.error.FFmpegError as exc:
                error = str(exc)
                break
    except av.error.FFmpegError as exc:
        error = str(exc)
    codec.skip_frame = "DEFAULT"
    with contextlib.suppress(av.error.FFmpegError):  # a decoder that already failed has nothing more
        yield from codec.decode(None)
    if error is not None:
        yield IntervalEnd(interval.number, None, error=error)


def decode_file(
    path: str | os.PathLike[str],
    *,
    fps: float | None = 1.0,
    workers: int = 0,
    size: OutputSize = OutputSize(),
    stream_id: str = "file",
    executor: str | IntervalExecutor = "auto",
    intervals_per_worker: int = 3,
    max_buffered_frames: int = 16,
) -> Iterator[Frame]:
    """Decode a file in parallel, yielding exactly the frames `open_source(path, fps=fps)` yields.

    workers=0 uses one per core. executor: "ray" (Ray tasks, one per interval), "threads", or
    "auto" (Ray when it is already initialised in this process, else threads).
    """
    target = os.fspath(path)
    workers = workers or os.cpu_count() or 1
    plan = demux_plan(target)
    kept = kept_frames(plan, fps)
    intervals = cut_intervals(plan, kept, workers * intervals_per_worker)
    runner = make_executor(executor, workers=workers, max_buffered=max_buffered_frames)
    yielded = 0
    for items in runner.map_ordered(decode_interval, target, intervals, size):
        for item in items:
            if isinstance(item, IntervalEnd):
                _raise_on_failed_interval(plan, item, yielded)
                break
            pts, rgb = item
            yield Frame(stream_id, yielded, pts, plan.time_base, rgb)
            yielded += 1
    # Every planned frame was decoded or deliberately skipped: the video reaches the plan's last pts.
    last_pts_s = float(plan.frame_pts[-1] * plan.time_base) if plan.frame_pts else None
    if plan.demux_error is not None:
        raise damaged_error(target, IngestError(plan.demux_error), last_pts_s, yielded)
    check_complete(target, last_pts_s, plan.promised_end_s, yielded)


def _raise_on_failed_interval(plan: DecodePlan, end: IntervalEnd, yielded: int) -> None:
    last_pts_s = None if end.last_pts is None else float(end.last_pts * plan.time_base)
    if end.error is not None:
        raise damaged_error(plan.target, IngestError(end.error), last_pts_s, yielded)
    if end.mismatch is not None:
        raise IngestError(
            f"{plan.target}: parallel decode disagrees with the demux plan in interval {end.number} "
            f"({end.mismatch}); decode this file with workers=1"
        )
