"""The parallel decoder's plan: one demux pass lists every frame's pts and the keyframes;
the sampling rule picks the kept frames; the timeline is cut into keyframe-aligned intervals.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from fractions import Fraction

import av

from ._av import open_container, promised_end_s, time_base_of, video_stream
from .sampling import NearestSampler


@dataclass(frozen=True, slots=True)
class Interval:
    """Presentation-time range [start_pts, end_pts) that one worker decodes; end None is the file's end."""

    number: int
    start_pts: int
    end_pts: int | None
    frame_pts: tuple[int, ...]  # every frame presented in the range, ascending
    kept: dict[int, bool]  # kept pts -> True when only an instant after it selected it (see decode_interval)
    first_index: int  # Frame.index of the first kept frame
    # keyframe pts -> packets (decode order, keyframe included) to send from it; the rest of its
    # GOP feeds no kept frame. Empty when GOPs are open (leading frames need the previous GOP).
    gop_packets: dict[int, int]

    def __repr__(self) -> str:
        return (
            f"Interval(#{self.number}, pts=[{self.start_pts}, {self.end_pts}), frames={len(self.frame_pts)}, "
            f"kept={len(self.kept)})"
        )


@dataclass(frozen=True, slots=True)
class DecodePlan:
    target: str
    time_base: Fraction
    frame_pts: tuple[int, ...]  # presentation order
    keyframe_pts: tuple[int, ...]
    decode_order: tuple[int | None, ...]  # every packet's pts as the demuxer returns them
    keyframe_positions: tuple[int, ...]  # indices into decode_order
    has_open_gops: bool  # some packet after a keyframe is presented before it
    promised_end_s: float | None  # where the header says the video ends, for truncation checks
    demux_error: str | None  # the demux pass stopped early on damaged data

    @property
    def frames(self) -> int:
        return len(self.frame_pts)


def demux_plan(target: str) -> DecodePlan:
    """One pass over the packets (no decoding): every frame's pts, decode order and keyframes."""
    container = open_container(target)
    try:
        stream = video_stream(container, target)
        presented: set[int] = set()
        decode_order: list[int | None] = []
        keyframe_positions: list[int] = []
        has_open_gops = False
        demux_error: str | None = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                pts = packet.pts
                if packet.is_keyframe and pts is not None:
                    keyframe_positions.append(len(decode_order))
                elif keyframe_positions and pts is not None:
                    key_pts = decode_order[keyframe_positions[-1]]
                    has_open_gops |= key_pts is not None and pts < key_pts
                decode_order.append(pts)
                if pts is not None and not packet.is_discard:
                    presented.add(pts)
        except av.error.FFmpegError as exc:
            demux_error = str(exc)
        keyframes = sorted({p for i in keyframe_positions if (p := decode_order[i]) is not None})
        return DecodePlan(
            target=target,
            time_base=time_base_of(stream),
            frame_pts=tuple(sorted(presented)),
            keyframe_pts=tuple(keyframes),
            decode_order=tuple(decode_order),
            keyframe_positions=tuple(keyframe_positions),
            has_open_gops=has_open_gops,
            promised_end_s=promised_end_s(container, stream),
            demux_error=demux_error,
        )
    finally:
        container.close()


def gop_packet_budgets(plan: DecodePlan, kept: dict[int, bool]) -> dict[int, int]:
    """For each keyframe, how many packets from it (decode order) feed a kept frame.

    In a closed GOP nothing after the last kept frame's packet is needed: not by this GOP, and
    not by the next one, which starts from its own keyframe. Open GOPs get no budget.
    """
    if plan.has_open_gops:
        return {}
    budgets: dict[int, int] = {}
    bounds = [*plan.keyframe_positions, len(plan.decode_order)]
    for start, end in itertools.pairwise(bounds):
        key_pts = plan.decode_order[start]
        needed = 0
        for offset, pts in enumerate(plan.decode_order[start:end]):
            if pts is not None and pts in kept:
                needed = offset + 1
        if key_pts is not None:
            budgets[key_pts] = needed
    return budgets


def kept_frames(plan: DecodePlan, fps: float | None) -> dict[int, bool]:
    """The pts the sampling rule keeps, each marked True when only a later instant chose it.

    Runs the same `NearestSampler` as the sequential path over the demuxed pts, so both keep
    the same frames.
    """
    sampler: NearestSampler[int] = NearestSampler(fps)
    kept: dict[int, bool] = {}
    for pts in plan.frame_pts:
        kept.update(sampler.offer_marked(float(pts * plan.time_base), pts))
    kept.update(dict.fromkeys(sampler.flush(), False))
    return kept


def cut_intervals(plan: DecodePlan, kept: dict[int, bool], count: int) -> list[Interval]:
    """About `count` intervals of similar frame counts, each starting on a keyframe."""
    if not plan.frame_pts:
        return []
    keyframes = [k for k in plan.keyframe_pts if k > plan.frame_pts[0]]
    position = {pts: i for i, pts in enumerate(plan.frame_pts)}
    per_interval = len(plan.frame_pts) / max(1, count)
    # The first interval starts at the first frame: a worker that does not seek decodes from the file start.
    starts = [plan.frame_pts[0]]
    for key in keyframes:
        if position.get(key, 0) >= len(starts) * per_interval:
            starts.append(key)
    budgets = gop_packet_budgets(plan, kept)
    intervals: list[Interval] = []
    first_index = 0
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else None
        lo = bisect.bisect_left(plan.frame_pts, start)
        hi = len(plan.frame_pts) if end is None else bisect.bisect_left(plan.frame_pts, end)
        frames = plan.frame_pts[lo:hi]
        kept_here = {p: kept[p] for p in frames if p in kept}
        gops = {k: n for k, n in budgets.items() if k >= start and (end is None or k < end)}
        intervals.append(Interval(number, start, end, frames, kept_here, first_index, gops))
        first_index += len(kept_here)
    return intervals
