"""Speech on live streams: audio chunks in, recognised segments out, on rolling VAD windows.

Audio is kept only from the start of the open speech span (bounded by the VAD's maximum segment
length), so memory stays flat however long the stream runs. A span is recognised as soon as the
VAD closes it: after `min_silence_ms` of silence, or at `max_segment_s`. Because VAD and
recognizer are the same as for files, a stream gives the same segments as the offline path.
"""

from __future__ import annotations

import numpy as np

from . import asr
from .config import TextSettings
from .errors import AudioFormatError
from .records import SpeechSegment, SpeechSpan
from .vad import FRAME_S, RATE_HZ, SileroVAD, SpeechSegmenter


class LiveTranscriber:
    """`push(samples, start_s)` per chunk returns the segments that chunk completed; `finish()` the rest.

    start_s of the first chunk sets the stream clock; later chunks may omit it. A chunk whose start_s
    is more than `gap_tolerance_s` away from where the clock expects it (a reconnect, dropped audio)
    closes what was open before the gap and restarts the clock there.
    """

    gap_tolerance_s = 0.25

    def __init__(
        self,
        settings: TextSettings,
        *,
        recognizer: asr.Recognizer | None = None,
        vad: SileroVAD | None = None,
    ) -> None:
        self.settings = settings
        self._recognizer = recognizer or asr.make_recognizer(settings.asr)
        self._vad = vad or SileroVAD()
        self._segmenter: SpeechSegmenter | None = None
        self._origin_s = 0.0
        self._received = 0  # samples pushed since the clock started
        self._buffer = np.zeros(0, np.float32)  # audio from _buffer_start onwards
        self._buffer_start = 0  # sample index of _buffer[0]
        v = settings.vad
        self._keep_s = v.max_segment_s + (v.min_silence_ms + v.pad_ms) / 1000 + 1.0

    def push(self, samples: np.ndarray, start_s: float | None = None) -> list[SpeechSegment]:
        if samples.ndim != 1 or samples.dtype != np.float32:
            raise AudioFormatError(
                f"LiveTranscriber expects [N] float32 at {RATE_HZ} Hz, got {samples.shape} {samples.dtype}"
            )
        segments: list[SpeechSegment] = []
        if self._segmenter is not None and start_s is not None:
            expected_s = self._origin_s + self._received / RATE_HZ
            if abs(start_s - expected_s) > self.gap_tolerance_s:
                segments = self.finish()
        if self._segmenter is None:
            self._start_clock(start_s or 0.0)
        assert self._segmenter is not None
        self._buffer = np.concatenate([self._buffer, samples])
        self._received += samples.size
        spans = self._segmenter.push(self._vad.push(samples))
        segments += [self._recognize(span) for span in spans]
        self._trim()
        return segments

    def finish(self) -> list[SpeechSegment]:
        """End of stream (or before a gap): recognise what is still open and reset."""
        if self._segmenter is None:
            return []
        end_s = self._origin_s + self._received / RATE_HZ
        spans = self._segmenter.push(self._vad.flush())
        spans += self._segmenter.finish(end_s)
        segments = [self._recognize(span) for span in spans]
        self._segmenter = None
        self._buffer = np.zeros(0, np.float32)
        return segments

    @property
    def buffered_s(self) -> float:
        return self._buffer.size / RATE_HZ

    def _start_clock(self, start_s: float) -> None:
        self._vad.reset()
        self._segmenter = SpeechSegmenter(self.settings.vad, start_s)
        self._origin_s = start_s
        self._received = 0
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0

    def _recognize(self, span: SpeechSpan) -> SpeechSegment:
        a = max(0, round((span.start_s - self._origin_s) * RATE_HZ) - self._buffer_start)
        b = max(a, round((span.end_s - self._origin_s) * RATE_HZ) - self._buffer_start)
        words = self._recognizer.transcribe(np.ascontiguousarray(self._buffer[a:b]), span.start_s)
        return SpeechSegment(span.start_s, span.end_s, tuple(words))

    def _trim(self) -> None:
        """Drop audio no future span can reach: older than the longest span plus its padding."""
        keep = round(self._keep_s * RATE_HZ) + round(FRAME_S * RATE_HZ)
        excess = self._buffer.size - keep
        if excess > 0:
            self._buffer = self._buffer[excess:]
            self._buffer_start += excess
