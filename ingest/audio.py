"""Audio tracks: demux with PyAV and resample to mono float32 at a speech rate (16 kHz by default).

A video with no audio stream is not an error: `read_audio` returns an empty `AudioTrack` whose
`note` says why. Live sources are read in chunks (`iter_audio_chunks`), each chunk carrying the
stream time of its first sample, so a transcriber can place words on the video's timeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from ._av import open_container

SPEECH_RATE_HZ = 16_000


@dataclass(frozen=True, slots=True, repr=False)
class AudioTrack:
    """A whole audio track, mono float32 in [-1, 1].

    `start_s` is the stream time of the first sample (containers whose audio does not start at 0
    exist); sample i plays at start_s + i / sample_rate.
    """

    samples: np.ndarray  # [N] float32
    sample_rate: int
    start_s: float = 0.0
    source_rate: int | None = None
    source_channels: int | None = None
    codec: str | None = None
    note: str = ""  # what is missing or damaged, in words; empty when the track is whole

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise ValueError(
                f"AudioTrack.samples must be [N] float32, got {self.samples.shape} {self.samples.dtype}"
            )
        if self.sample_rate <= 0:
            raise ValueError(f"AudioTrack.sample_rate must be > 0, got {self.sample_rate}")

    @property
    def has_audio(self) -> bool:
        return self.samples.size > 0

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def rms(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.samples)))) if self.has_audio else 0.0

    def __repr__(self) -> str:
        note = f", note={self.note!r}" if self.note else ""
        return (
            f"AudioTrack(samples=[{self.samples.size}], sample_rate={self.sample_rate}, "
            f"start_s={self.start_s:.3f}, duration_s={self.duration_s:.3f}, codec={self.codec!r}{note})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class AudioChunk:
    """A piece of a live or file audio stream, in stream time."""

    start_s: float
    samples: np.ndarray  # [N] float32 mono
    sample_rate: int

    @property
    def end_s(self) -> float:
        return self.start_s + self.samples.size / self.sample_rate

    def __repr__(self) -> str:
        return (
            f"AudioChunk(start_s={self.start_s:.3f}, samples=[{self.samples.size}], rate={self.sample_rate})"
        )


def read_audio(path: str | os.PathLike[str], *, rate: int = SPEECH_RATE_HZ) -> AudioTrack:
    """The first audio track of a file, downmixed to mono and resampled to `rate`.

    No audio stream gives an empty track with a note; damaged audio keeps what decoded and
    says where it stopped. Raises SourceOpenError only when the file cannot be opened at all.
    """
    target = os.fspath(path)
    _check_rate(rate)
    container = open_container(target)
    try:
        stream = _audio_stream(container)
        if stream is None:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            return _empty(rate, f"no audio stream in {target} (it holds: {kinds})")
        pieces: list[np.ndarray] = []
        start_s: float | None = None
        note = ""
        try:
            for chunk in _decode_resampled(container, stream, rate):
                start_s = chunk.start_s if start_s is None else start_s
                pieces.append(chunk.samples)
        except av.error.FFmpegError as exc:
            decoded_s = sum(p.size for p in pieces) / rate
            note = f"audio damaged after {decoded_s:.2f} s of {target}: {exc}"
        samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        if not pieces and not note:
            note = f"audio stream in {target} decoded to no samples"
        return AudioTrack(
            samples=samples,
            sample_rate=rate,
            start_s=start_s or 0.0,
            source_rate=stream.codec_context.sample_rate or None,
            source_channels=stream.codec_context.channels or None,
            codec=stream.codec_context.name,
            note=note,
        )
    finally:
        container.close()


def iter_audio_chunks(
    uri: str,
    *,
    rate: int = SPEECH_RATE_HZ,
    options: dict[str, str] | None = None,
    timeout_s: tuple[float, float] | None = None,
) -> Iterator[AudioChunk]:
    """Decoded, resampled audio as it arrives (files, RTSP, HLS). Yields nothing without audio.

    Chunk boundaries follow the container's frames (tens of ms); a live transcriber
    accumulates them into its own windows.
    """
    _check_rate(rate)
    container = open_container(uri, options=options, timeout_s=timeout_s)
    try:
        stream = _audio_stream(container)
        if stream is None:
            return
        yield from _decode_resampled(container, stream, rate)
    finally:
        container.close()


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SPEECH_RATE_HZ) -> np.ndarray:
    """[N] mono float32 at from_rate -> [M] float32 at to_rate (FFmpeg's resampler, as for files)."""
    _check_rate(from_rate)
    _check_rate(to_rate)
    if samples.ndim != 1:
        raise ValueError(f"resample expects [N] mono samples, got shape {samples.shape}")
    if from_rate == to_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono"
    )
    frame.sample_rate = from_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    pieces = [_mono(out) for out in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def _decode_resampled(container: Any, stream: Any, rate: int) -> Iterator[AudioChunk]:
    """Resampled chunks with their stream times; sample counts, not pts, advance the clock.

    Resamplers delay and re-block samples, so a chunk's time comes from the first decoded
    frame's pts plus the samples emitted so far (at the output rate).
    """
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    origin_s: float | None = None
    emitted = 0
    for frame in container.decode(stream):
        if origin_s is None:
            origin_s = _frame_start_s(frame, stream)
        for out in resampler.resample(frame):
            samples = _mono(out)
            yield AudioChunk(origin_s + emitted / rate, samples, rate)
            emitted += samples.size
    if origin_s is None:
        return
    for out in resampler.resample(None):
        samples = _mono(out)
        yield AudioChunk(origin_s + emitted / rate, samples, rate)
        emitted += samples.size


def _audio_stream(container: Any) -> Any | None:
    streams = list(container.streams.audio)
    return streams[0] if streams else None


def _frame_start_s(frame: Any, stream: Any) -> float:
    if frame.pts is None:
        return 0.0
    time_base = frame.time_base or stream.time_base or Fraction(1, frame.sample_rate)
    return float(frame.pts * time_base)


def _mono(frame: Any) -> np.ndarray:
    # A packed mono flt frame is [1, N]; copy so the resampler may reuse its buffer.
    return np.ascontiguousarray(frame.to_ndarray().reshape(-1), dtype=np.float32).copy()


def _empty(rate: int, note: str) -> AudioTrack:
    return AudioTrack(samples=np.zeros(0, np.float32), sample_rate=rate, note=note)


def _check_rate(rate: int) -> None:
    if not 4000 <= rate <= 192_000:
        raise ValueError(f"audio rate must be in [4000, 192000] Hz, got {rate}")
