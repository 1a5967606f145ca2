"""Synthetic videos with known content, for tests, benchmarks and the demo.

A `SceneScript` is a list of scenes (each cut is a scene start) with a static textured
background and boxes moving at constant velocity, so the ground truth (where things move,
where the cuts are) is known exactly. `write_video` encodes it with PyAV: constant or
variable frame rate, any start pts, an optional audio track.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True, slots=True)
class Box:
    color: tuple[int, int, int]
    size_px: tuple[int, int]  # (width, height)
    start_xy: tuple[float, float]  # top-left at the scene's start
    velocity_px_s: tuple[float, float] = (0.0, 0.0)

    def rect_at(self, t_s: float, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) at t_s seconds into the scene, bouncing off the frame edges."""
        x = _bounce(self.start_xy[0] + self.velocity_px_s[0] * t_s, width - self.size_px[0])
        y = _bounce(self.start_xy[1] + self.velocity_px_s[1] * t_s, height - self.size_px[1])
        return (int(x), int(y), int(x) + self.size_px[0], int(y) + self.size_px[1])


def _bounce(position: float, span: float) -> float:
    if span <= 0:
        return 0.0
    period = 2 * span
    p = math.fmod(position, period)
    p = p + period if p < 0 else p
    return p if p <= span else period - p


@dataclass(frozen=True, slots=True)
class Scene:
    start_s: float
    seed: int = 0  # picks the background texture
    boxes: tuple[Box, ...] = ()


@dataclass(frozen=True, slots=True)
class SceneScript:
    width: int
    height: int
    fps: float
    duration_s: float
    scenes: tuple[Scene, ...] = field(default_factory=lambda: (Scene(0.0),))

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise ValueError(f"width and height must be even for yuv420p, got {self.width}x{self.height}")
        if not self.scenes or self.scenes[0].start_s != 0.0:
            raise ValueError("the first scene must start at 0.0 s")

    @property
    def cut_times_s(self) -> list[float]:
        return [s.start_s for s in self.scenes[1:]]

    def scene_at(self, t_s: float) -> Scene:
        current = self.scenes[0]
        for scene in self.scenes:
            if scene.start_s <= t_s:
                current = scene
        return current


_backgrounds: dict[tuple[int, int, int], np.ndarray] = {}


def background(width: int, height: int, seed: int) -> np.ndarray:
    """A static, smooth but textured RGB background: compresses well, never changes."""
    key = (width, height, seed)
    if key not in _backgrounds:
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        img = np.zeros((height, width, 3), np.float32)
        for c in range(3):
            fx, fy, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 2 * np.pi)
            img[..., c] = 128 + 60 * np.sin(2 * np.pi * (fx * xx / width + fy * yy / height) + phase)
            img[..., c] += (
                30
                * np.cos(2 * np.pi * rng.uniform(3, 8) * xx / width)
                * np.sin(2 * np.pi * rng.uniform(3, 8) * yy / height)
            )
        _backgrounds[key] = np.clip(img, 0, 255).astype(np.uint8)
    return _backgrounds[key]


def render_frame(script: SceneScript, t_s: float) -> np.ndarray:
    scene = script.scene_at(t_s)
    frame = background(script.width, script.height, scene.seed).copy()
    for box in scene.boxes:
        x0, y0, x1, y1 = box.rect_at(t_s - scene.start_s, script.width, script.height)
        frame[y0:y1, x0:x1] = box.color
    return frame


def frame_times_s(script: SceneScript, *, is_vfr: bool = False) -> list[float]:
    """Presentation times: 1/fps apart, or for VFR alternating runs of 1/fps and 2.5/fps."""
    times, t, i = [], 0.0, 0
    while t < script.duration_s - 1e-9:
        times.append(t)
        step = 1.0 / script.fps
        if is_vfr and (i // 7) % 2 == 1:
            step *= 2.5
        t += step
        i += 1
    return times


@dataclass(frozen=True, slots=True)
class WrittenVideo:
    path: Path
    frames: int
    pts_s: tuple[float, ...]  # presentation times as encoded, start offset included
    script: SceneScript


def write_video(
    path: str | Path,
    script: SceneScript,
    *,
    gop_frames: int = 60,
    crf: int = 23,
    preset: str = "veryfast",
    start_s: float = 0.0,
    is_vfr: bool = False,
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    bframes: int = 2,
) -> WrittenVideo:
    """Encode `script` as H.264 (+ AAC when `audio` is given: mono float32 in [-1, 1]).

    start_s shifts every timestamp (files whose first pts is not zero). The time base is
    1/90000 so variable frame rates are represented exactly.
    """
    path = Path(path)
    time_base = Fraction(1, 90000)
    times = frame_times_s(script, is_vfr=is_vfr)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(script.fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = script.width, script.height, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {
            "crf": str(crf),
            "preset": preset,
            "g": str(gop_frames),
            "bf": str(bframes),
            "x264-params": "scenecut=0",
        }
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=audio_rate)
            audio_stream.layout = "mono"
        written: list[float] = []
        for t in times:
            frame = av.VideoFrame.from_ndarray(render_frame(script, t), format="rgb24")
            frame.pts = round((t + start_s) / time_base)
            frame.time_base = time_base
            written.append(float(frame.pts * time_base))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None and audio is not None:
            _write_audio(container, audio_stream, audio, audio_rate, start_s)
    return WrittenVideo(path, len(times), tuple(written), script)


def _write_audio(
    container: av.container.OutputContainer, stream: object, samples: np.ndarray, rate: int, start_s: float
) -> None:
    chunk = 1024
    pcm = np.clip(samples.astype(np.float32), -1, 1)
    for offset in range(0, len(pcm), chunk):
        block = pcm[offset : offset + chunk]
        frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = offset + round(start_s * rate)
        frame.time_base = Fraction(1, rate)
        container.mux(stream.encode(frame))  # type: ignore[attr-defined]
    container.mux(stream.encode(None))  # type: ignore[attr-defined]


def tone(seconds: float, hz: float = 440.0, rate: int = 16000, volume: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (volume * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def truncate(path: str | Path, out: str | Path, keep_fraction: float) -> Path:
    """Copy the first `keep_fraction` of a file's bytes: a file cut off mid-write."""
    data = Path(path).read_bytes()
    Path(out).write_bytes(data[: int(len(data) * keep_fraction)])
    return Path(out)


def moving_boxes_script(
    width: int = 320,
    height: int = 240,
    fps: float = 30.0,
    duration_s: float = 10.0,
    cut_at_s: Sequence[float] = (),
) -> SceneScript:
    """A static background with two moving boxes; each cut switches to a new background and boxes."""
    scenes = []
    for i, start in enumerate([0.0, *cut_at_s]):
        rng = np.random.default_rng(1000 + i)
        boxes = tuple(
            Box(
                color=tuple(int(c) for c in rng.integers(0, 256, 3)),  # type: ignore[arg-type]
                size_px=(max(8, width // 8), max(8, height // 8)),
                start_xy=(float(rng.uniform(0, width * 0.6)), float(rng.uniform(0, height * 0.6))),
                velocity_px_s=(float(rng.uniform(-1, 1) * width / 4), float(rng.uniform(-1, 1) * height / 4)),
            )
            for _ in range(2)
        )
        scenes.append(Scene(start_s=float(start), seed=i, boxes=boxes))
    return SceneScript(width, height, fps, duration_s, tuple(scenes))


def iter_frames(script: SceneScript) -> Iterator[tuple[float, np.ndarray]]:
    for t in frame_times_s(script):
        yield t, render_frame(script, t)
