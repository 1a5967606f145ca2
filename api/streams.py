"""Live streams: one reader (Ray actor or thread) and one processing thread per stream.

The loop takes a batch of frames, runs them through the stream's `StreamProcessor` (static-patch
test, encoders, compressor) and hands every closed event to the sink (the memory bank). Each stream
has its own thread, so a stream that stalls, fails or is slow to store never holds up another;
its failures are counted and shown in its health, and after `_MAX_CONSECUTIVE_ERRORS` failed
batches in a row the stream stops with state `failed`. `remove` stops the loop, flushes the open
event into memory and closes the reader.

Frame indices restart at 0 whenever a reader starts, and event ids are `<stream>:<first frame
index>`: a stream added again after a restart would reuse ids, and the memory bank drops events
whose id it holds. The loop therefore offsets indices by the start time in milliseconds, which
keeps ids of different runs apart (for any rate below 1000 frames/s).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compressor import CompressorSettings, Event
from ingest import Frame
from ingest.config import IngestSettings
from vidsight.live_text import LiveText
from vidsight.processing import StreamProcessor

from .errors import ConflictError, NotFoundError, UnavailableError
from .stages import LiveHandle, Stages

log = logging.getLogger(__name__)
_MAX_CONSECUTIVE_ERRORS = 5
_HEALTH_REFRESH_S = 1.0
_RATE_WINDOW_S = 10.0

EventSink = Callable[[Event], None]


@dataclass
class StreamStats:
    """What the processing loop measured (the reader's own health is kept next to it)."""

    frames: int = 0
    events: int = 0
    tokens_in: int = 0
    tokens_kept: int = 0
    errors: int = 0
    last_error: str | None = None
    processing_lag_s: float | None = None
    max_processing_lag_s: float = 0.0
    recent: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic s, frames) per batch

    def fps(self, now: float) -> float:
        while self.recent and now - self.recent[0][0] > _RATE_WINDOW_S:
            self.recent.popleft()
        if not self.recent:
            return 0.0
        span = max(now - self.recent[0][0], 1.0)
        return sum(n for _, n in self.recent) / span


class LiveStream:
    def __init__(
        self,
        stream_id: str,
        uri: str,
        handle: LiveHandle,
        processor: StreamProcessor,
        sink: EventSink,
        *,
        fps: float | None,
        batch_frames: int,
        poll_s: float,
        screen_text: Any | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.uri = uri
        self.fps_setting = fps
        self.created_s = time.time()
        self._handle = handle
        self._processor = processor
        self._sink = sink
        self._batch_frames = batch_frames
        self._poll_s = poll_s
        self._screen_text = screen_text  # vidsight.live_text.LiveText: OCR of what the camera shows
        self._index_base = int(self.created_s * 1000)
        self._lock = threading.Lock()
        self._stats = StreamStats()
        self._reader_health: dict[str, Any] = {"state": "connecting"}
        self._health_read_s = 0.0
        self._state = "running"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{stream_id}", daemon=True)

    def start(self) -> LiveStream:
        self._thread.start()
        return self

    # -- loop -----------------------------------------------------------------------------------

    def _run(self) -> None:
        consecutive_errors = 0
        try:
            while not self._stop.is_set():
                self._refresh_health()
                try:
                    frames = self._handle.get_batch(self._batch_frames, self._poll_s)
                    if not frames:
                        if self._handle.is_finished():
                            break
                        continue
                    self._process(frames)
                    consecutive_errors = 0
                except Exception as exc:  # one stream's failure is its own: counted, shown, never spread
                    consecutive_errors += 1
                    self._note_error(exc)
                    if consecutive_errors >= _MAX_CONSECUTIVE_ERRORS:
                        log.error(
                            "stream %s: %d failures in a row, stopping: %s",
                            self.stream_id,
                            consecutive_errors,
                            exc,
                        )
                        self._set_state("failed")
                        return
                    self._stop.wait(min(5.0, 0.2 * 2**consecutive_errors))
            self._drain()
        finally:
            self._refresh_health(force=True)
            if self._state == "running":
                self._set_state("stopped" if self._stop.is_set() else "ended")

    def _process(self, frames: list[Frame]) -> None:
        frames = [dataclasses.replace(f, index=f.index + self._index_base) for f in frames]
        if self._screen_text is not None:
            self._screen_text.observe(frames)
        events = self._processor.process(frames)
        self._emit(events)
        now_wall, now = time.time(), time.monotonic()
        captured = frames[-1].wall_time_s
        with self._lock:
            s = self._stats
            s.frames += len(frames)
            s.recent.append((now, len(frames)))
            if captured is not None:
                s.processing_lag_s = max(0.0, now_wall - captured)
                s.max_processing_lag_s = max(s.max_processing_lag_s, s.processing_lag_s)

    def _drain(self) -> None:
        """Close the open event so it reaches memory."""
        try:
            self._emit(self._processor.flush())
        except Exception as exc:
            self._note_error(exc)

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            if self._screen_text is not None:
                event = self._screen_text.attach(event)
            self._sink(event)
            with self._lock:
                self._stats.events += 1
                self._stats.tokens_in += event.stats.tokens_in
                self._stats.tokens_kept += event.stats.tokens_kept

    def _note_error(self, exc: BaseException) -> None:
        log.warning("stream %s: %s: %s", self.stream_id, type(exc).__name__, exc)
        with self._lock:
            self._stats.errors += 1
            self._stats.last_error = f"{type(exc).__name__}: {exc}"

    def _refresh_health(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._health_read_s < _HEALTH_REFRESH_S:
            return
        self._health_read_s = now
        try:
            health = self._handle.health()
        except Exception as exc:  # the reader's process died: say so, the loop decides what next
            health = {"state": "failed", "last_error": f"reader unreachable: {exc}"}
        with self._lock:
            self._reader_health = health

    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state

    # -- control and health ---------------------------------------------------------------------

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the loop (the open event is flushed to memory) and close the reader. Idempotent."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        try:
            self._handle.close()
        except Exception as exc:
            log.warning("stream %s: closing the reader: %s", self.stream_id, exc)

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            s, h = self._stats, self._reader_health
            state = h.get("state", "connecting") if self._state == "running" else self._state
            return {
                "stream_id": self.stream_id,
                "kind": "live",
                "source": self.uri,
                "state": state,
                "fps": round(s.fps(now), 3),
                "lag_s": h.get("lag_s"),
                "processing_lag_s": None if s.processing_lag_s is None else round(s.processing_lag_s, 3),
                "max_processing_lag_s": round(s.max_processing_lag_s, 3),
                "frames": s.frames,
                "dropped": int(h.get("dropped", 0)),
                "reconnects": int(h.get("reconnects", 0)),
                "events": s.events,
                "tokens_in": s.tokens_in,
                "tokens_kept": s.tokens_kept,
                "errors": s.errors,
                "queue_frames": max(0, int(h.get("frames", 0)) - int(h.get("dropped", 0)) - s.frames),
                "last_error": s.last_error or h.get("last_error"),
                "created_s": self.created_s,
            }


class StreamManager:
    """The live streams of this server."""

    def __init__(
        self,
        stages: Stages,
        ingest: IngestSettings,
        compressor: CompressorSettings,
        sink: EventSink,
        *,
        max_streams: int,
        batch_frames: int,
        poll_s: float,
        ocr: Any | None = None,
    ) -> None:
        self.stages = stages
        self.ocr = ocr  # encoder.text.SlideOCR shared by the streams, or None: no screen text
        self.ingest = ingest
        self.compressor = compressor
        self.sink = sink
        self.max_streams = max_streams
        self.batch_frames = batch_frames
        self.poll_s = poll_s
        self._streams: dict[str, LiveStream | _Placeholder] = {}  # a placeholder while a reader opens
        self._lock = threading.Lock()

    def add(self, stream_id: str, uri: str, *, fps: float | None, max_side_px: int | None) -> LiveStream:
        with self._lock:
            if stream_id in self._streams:
                raise ConflictError(f"stream {stream_id!r} already exists; remove it first")
            if len(self._streams) >= self.max_streams:
                raise UnavailableError(f"this server runs at most {self.max_streams} live streams")
            self._streams[stream_id] = placeholder = _Placeholder()
        try:
            rate = fps or self.ingest.sample_fps
            handle = self.stages.open_live(uri, stream_id, rate, self.ingest, max_side_px)
            processor = StreamProcessor(stream_id, self.stages.frame_encoder(), self.compressor)
            stream = LiveStream(
                stream_id,
                uri,
                handle,
                processor,
                self.sink,
                fps=rate,
                batch_frames=self.batch_frames,
                poll_s=self.poll_s,
                screen_text=None if self.ocr is None else LiveText(self.ocr, stream_id),
            )
        except BaseException:
            with self._lock:
                if self._streams.get(stream_id) is placeholder:
                    del self._streams[stream_id]
            raise
        with self._lock:
            self._streams[stream_id] = stream
        return stream.start()

    def get(self, stream_id: str) -> LiveStream:
        stream = self._streams.get(stream_id)
        if not isinstance(stream, LiveStream):
            raise NotFoundError(f"no live stream {stream_id!r}")
        return stream

    def has(self, stream_id: str) -> bool:
        return stream_id in self._streams

    def remove(self, stream_id: str) -> None:
        stream = self.get(stream_id)
        with self._lock:
            self._streams.pop(stream_id, None)
        stream.stop()

    def all(self) -> list[LiveStream]:
        return [s for s in list(self._streams.values()) if isinstance(s, LiveStream)]

    def snapshots(self) -> list[dict[str, Any]]:
        return [s.snapshot() for s in self.all()]

    def close(self) -> None:
        streams = self.all()
        with self._lock:
            self._streams.clear()
        for stream in streams:
            stream._stop.set()  # stop every loop first, then wait for each
        for stream in streams:
            stream.stop()


class _Placeholder:
    """Holds a stream id while its reader opens, so two adds of one id cannot race."""
