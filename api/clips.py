"""Event clips as MP4.

- Recorded videos: the event's [start, end] range (plus one sampling interval, the time the last
  sampled frame stands for) is cut from the source file and re-encoded (H.264), so the clip starts
  exactly at the event and not at the previous keyframe as a stream copy would.
- Live streams keep no video, only what the memory bank stores: the event's JPEG keyframes. Their
  clip is those keyframes shown in turn over the event's duration (a slideshow, variable frame
  rate), and the response says so in `X-Vidsight-Clip: keyframes`.
"""

from __future__ import annotations

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from .errors import NotFoundError, UnprocessableError

_TIME_BASE = Fraction(1, 1000)


def cut_recorded(
    source: str, start_s: float, end_s: float, *, max_s: float, timeout_s: float = 10.0
) -> bytes:
    """MP4 bytes of source's [start_s, end_s) (presentation seconds), at most max_s long."""
    end_s = min(end_s, start_s + max_s)
    with tempfile.TemporaryDirectory(prefix="vidsight-clip-") as tmp:
        out_path = Path(tmp) / "clip.mp4"
        try:
            written = _transcode(source, out_path, start_s, end_s, timeout_s)
        except (av.error.FFmpegError, OSError) as exc:
            raise NotFoundError(f"cannot read the source video {source!r}: {exc}") from exc
        if written == 0:
            raise UnprocessableError(f"the source video {source!r} has no frames in [{start_s}, {end_s}) s")
        return out_path.read_bytes()


def _transcode(source: str, out_path: Path, start_s: float, end_s: float, timeout_s: float) -> int:
    with av.open(source, timeout=timeout_s) as inp, av.open(str(out_path), "w", format="mp4") as out:
        stream = inp.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        inp.seek(int(start_s / time_base), stream=stream, backward=True, any_frame=False)
        encoder = _video_stream(out, stream.codec_context.width, stream.codec_context.height)
        written = 0
        for frame in inp.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * time_base)
            if t < start_s - 1e-6:
                continue
            if t >= end_s:
                break
            rgb = _even(frame.to_ndarray(format="rgb24"))
            out_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            out_frame.pts = round((t - start_s) / _TIME_BASE)
            out_frame.time_base = _TIME_BASE
            out.mux(encoder.encode(out_frame))
            written += 1
        out.mux(encoder.encode(None))
        return written


def keyframe_clip(jpegs: list[bytes], duration_s: float) -> bytes:
    """MP4 bytes showing each JPEG keyframe for an equal share of duration_s."""
    if not jpegs:
        raise NotFoundError("this event kept no keyframes to make a clip from")
    images = [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs]
    h, w = _even(images[0]).shape[:2]
    share_s = max(duration_s, 1.0) / len(images)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        encoder = _video_stream(out, w, h)
        for i, rgb in enumerate([*images, images[-1]]):  # the last image again closes its display time
            frame = av.VideoFrame.from_ndarray(_fit(rgb, h, w), format="rgb24")
            frame.pts = round(i * share_s / _TIME_BASE)
            frame.time_base = _TIME_BASE
            out.mux(encoder.encode(frame))
        out.mux(encoder.encode(None))
    return buffer.getvalue()


def _video_stream(out: av.container.OutputContainer, width: int, height: int) -> av.VideoStream:
    encoder = out.add_stream("libx264", rate=30)
    encoder.width, encoder.height, encoder.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
    encoder.time_base = _TIME_BASE
    encoder.codec_context.time_base = _TIME_BASE
    encoder.options = {"preset": "veryfast", "crf": "26", "movflags": "+faststart"}
    return encoder


def _even(rgb: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: crop one pixel where odd."""
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


def _fit(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    if rgb.shape[:2] == (h, w):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((w, h)))
