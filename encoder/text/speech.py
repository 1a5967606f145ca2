"""From an audio track to a transcript: voice activity, then recognition of each speech span.

`Transcriber.start(track)` runs voice activity at once and hands the spans to a pool of
recognizer processes, so the caller can read slides while speech is being recognised;
`.result()` collects the words. Live streams use `LiveTranscriber` (live.py) with the same
VAD and recognizer, which gives the same words span by span.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from . import asr
from .config import TextSettings
from .records import ChannelReport, SpeechSegment, SpeechSpan, Transcript, Word
from .vad import RATE_HZ, SileroVAD, detect_speech

if TYPE_CHECKING:
    from ingest.audio import AudioTrack

# Below this much speech a pool costs more than it saves.
_POOL_MIN_SPEECH_S = 30.0


class PendingTranscript:
    """Recognition in flight; `result()` waits for it."""

    def __init__(
        self,
        transcriber: Transcriber,
        spans: list[SpeechSpan],
        jobs: list[Future[list[Word]]] | None,
        track: AudioTrack,
    ) -> None:
        self._transcriber = transcriber
        self._spans = spans
        self._jobs = jobs
        self._track = track

    def result(self) -> Transcript:
        if self._jobs is not None:
            words_per_span = [job.result() for job in self._jobs]
        else:
            words_per_span = [self._transcriber.recognize_span(self._track, span) for span in self._spans]
        segments = tuple(
            SpeechSegment(span.start_s, span.end_s, tuple(words))
            for span, words in zip(self._spans, words_per_span, strict=True)
        )
        return Transcript(tuple(self._spans), segments, self._transcriber.report(self._track, segments))


class Transcriber:
    """VAD + ASR for recorded audio. Holds the models; `close()` stops the worker pool."""

    def __init__(self, settings: TextSettings, recognizer: asr.Recognizer | None = None) -> None:
        self.settings = settings
        self._vad = SileroVAD()
        self._recognizer = recognizer
        self._workers = settings.asr.workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    @property
    def recognizer(self) -> asr.Recognizer:
        if self._recognizer is None:
            self._recognizer = asr.make_recognizer(self.settings.asr)
        return self._recognizer

    def warmup(self) -> None:
        """Load the recognizer here and start the worker pool, so the first file pays no start-up."""
        _ = self.recognizer
        if self._uses_pool():
            pool = self._ensure_pool()
            for job in [pool.submit(asr.ping_worker) for _ in range(self._workers)]:
                job.result()

    def transcribe(self, track: AudioTrack) -> Transcript:
        return self.start(track).result()

    def start(self, track: AudioTrack) -> PendingTranscript:
        if not self.settings.asr.enabled or not track.has_audio:
            return PendingTranscript(self, [], None, track)
        if track.sample_rate != RATE_HZ:
            raise asr.AudioFormatError(f"Transcriber needs {RATE_HZ} Hz audio, got {track.sample_rate} Hz")
        spans = detect_speech(track.samples, self.settings.vad, start_s=track.start_s, vad=self._vad)
        speech_s = sum(s.duration_s for s in spans)
        if not (self._uses_pool() and speech_s >= _POOL_MIN_SPEECH_S):
            return PendingTranscript(self, spans, None, track)
        pool = self._ensure_pool()
        jobs = [pool.submit(asr.transcribe_in_worker, _slice(track, s), s.start_s) for s in spans]
        return PendingTranscript(self, spans, jobs, track)

    def recognize_span(self, track: AudioTrack, span: SpeechSpan) -> list[Word]:
        return self.recognizer.transcribe(_slice(track, span), span.start_s)

    def report(self, track: AudioTrack, segments: tuple[SpeechSegment, ...]) -> ChannelReport:
        return speech_report(track, segments, self.settings)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Transcriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _uses_pool(self) -> bool:
        # Whisper backends batch internally and hold big weights: one copy, in this process.
        return self._workers > 1 and self.settings.asr.backend == "pocketsphinx"

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process may hold ONNX Runtime and torch thread pools.
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=asr.init_worker,
                initargs=(self.settings.asr.model_dump_json(),),
            )
        return self._pool


def speech_report(
    track: AudioTrack, segments: tuple[SpeechSegment, ...], settings: TextSettings
) -> ChannelReport:
    """What the speech channel found, in words (absent audio, silence, words and their confidence)."""
    if not settings.asr.enabled:
        return ChannelReport("speech", "disabled", "speech recognition is disabled")
    if not track.has_audio:
        return ChannelReport("speech", "absent", track.note or "no audio")
    words = [w for s in segments for w in s.words]
    speech_s = sum(s.end_s - s.start_s for s in segments)
    level_db = 20 * math.log10(max(track.rms(), 1e-10))
    counts = {
        "audio_s": round(track.duration_s, 3),
        "speech_s": round(speech_s, 3),
        "segments": len(segments),
        "words": len(words),
        "level_dbfs": round(level_db, 1),
    }
    if not segments:
        detail = f"audio present ({track.duration_s:.1f} s at {level_db:.0f} dBFS) but no speech detected"
        return ChannelReport("speech", "empty", detail, counts)
    if not words:
        detail = f"{len(segments)} speech segments ({speech_s:.1f} s) but no words recognised"
        return ChannelReport("speech", "empty", detail, counts)
    warnings = _doubts(words, counts, settings)
    detail = f"{len(words)} words in {len(segments)} segments ({speech_s:.1f} s of speech)"
    return ChannelReport("speech", "found", detail, counts, warnings)


# An English model spells out what it cannot map to words ("l u f t"); English speech rarely has
# one-letter words other than "a" and "i" (measured: at most 2% on the lecture narrations).
_SPELLED_OUT_SHARE = 0.08


def _doubts(words: list[Word], counts: dict[str, float], settings: TextSettings) -> tuple[str, ...]:
    """Warnings that the transcript is probably not usable: low confidence, or words spelled out."""
    doubts = []
    scored = [w.confidence for w in words if w.confidence is not None]
    if scored:
        mean = float(np.mean(scored))
        counts["mean_confidence"] = round(mean, 3)
        if mean < settings.asr.low_confidence_warning:
            doubts.append(f"mean word confidence {mean:.2f} < {settings.asr.low_confidence_warning}")
    spelled = sum(len(w.text) == 1 and w.text.lower() not in ("a", "i") for w in words) / len(words)
    counts["spelled_out_share"] = round(spelled, 3)
    if spelled > _SPELLED_OUT_SHARE:
        doubts.append(f"{spelled:.0%} of words are single letters")
    if not doubts:
        return ()
    return (f"{' and '.join(doubts)}: noisy audio, or speech not in {settings.asr.language!r}",)


def _slice(track: AudioTrack, span: SpeechSpan) -> np.ndarray:
    a = max(0, round((span.start_s - track.start_s) * track.sample_rate))
    b = min(track.samples.size, round((span.end_s - track.start_s) * track.sample_rate))
    return np.ascontiguousarray(track.samples[a:b])
