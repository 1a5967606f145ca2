"""A self-healing reader for one live stream (RTSP, webcam, live HLS).

One thread connects, decodes and samples; kept frames go to a bounded drop-oldest queue so a
slow consumer never makes the stream fall behind real time. Any failure (refused connection,
no data within the read timeout, no decodable frame, end of stream) closes the connection,
opens a `Gap`, and reconnects after an exponential backoff with jitter. Health is kept as a
`StreamHealth` that callers read as a copy.
"""

from __future__ import annotations

import copy
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import av

from ._av import OutputSize, configure_decoder, open_container, time_base_of, to_rgb, video_stream
from .backpressure import Backoff, DropOldestQueue, QueueClosed
from .config import IngestSettings
from .errors import IngestError, NotVideoError, StreamStalledError
from .records import Frame, Gap, StreamHealth, StreamState
from .sampling import NearestSampler
from .uris import SourceKind, SourceSpec

log = logging.getLogger(__name__)


class LiveReader:
    """Reads one live source in a background thread. Plain Python: Ray wraps it at the edge."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        stream_id: str,
        fps: float | None,
        size: OutputSize = OutputSize(),
        settings: IngestSettings | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.stream_id = stream_id
        self.fps = fps
        self.size = size
        self.settings = settings or IngestSettings()
        self._clock = clock
        self._backoff = Backoff(
            self.settings.backoff_base_s, self.settings.backoff_cap_s, rng or random.Random()
        )
        self._queue: DropOldestQueue[Frame] = DropOldestQueue(self.settings.max_queue_frames)
        self._health = StreamHealth(stream_id=stream_id, uri=spec.uri)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_index = 0

    # -- consumer side -------------------------------------------------------------------------

    def start(self) -> LiveReader:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"live-{self.stream_id}", daemon=True)
            self._thread.start()
        return self

    def get(self, timeout_s: float | None = None) -> Frame | None:
        """The next frame; None on timeout. Raises QueueClosed once the reader is done and drained."""
        try:
            return self._queue.get(timeout_s)
        except queue.Empty:
            return None

    def get_batch(self, max_frames: int, timeout_s: float) -> list[Frame]:
        """Up to max_frames frames: waits up to timeout_s for the first, then takes what is queued."""
        frames: list[Frame] = []
        try:
            first = self._queue.get(timeout_s)
        except (queue.Empty, QueueClosed):
            return frames
        frames.append(first)
        while len(frames) < max_frames:
            try:
                frames.append(self._queue.get(0))
            except (queue.Empty, QueueClosed):
                break
        return frames

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        while True:
            try:
                yield self._queue.get(None)
            except QueueClosed:
                return

    def __len__(self) -> int:
        """Frames waiting in the queue."""
        return len(self._queue)

    def health(self) -> StreamHealth:
        with self._lock:
            return copy.deepcopy(self._health)

    @property
    def is_finished(self) -> bool:
        with self._lock:
            return self._health.state in (StreamState.FAILED, StreamState.ENDED)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop reading. Idempotent; frames already queued can still be drained."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        with self._lock:
            if self._health.state not in (StreamState.FAILED, StreamState.ENDED):
                self._health.state = StreamState.ENDED
            self._close_gap(self._clock())
        self._queue.close()

    def __enter__(self) -> LiveReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reader thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._read_one_connection()
                    reason = "stream ended"
                except NotVideoError as exc:
                    self._finish(StreamState.FAILED, str(exc))
                    return
                except (IngestError, av.error.FFmpegError, OSError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                if self._stop.is_set():
                    return
                if not self._schedule_reconnect(reason):
                    return
        except Exception as exc:  # a bug must not kill the stream silently
            log.exception("live reader %s crashed", self.stream_id)
            self._finish(StreamState.FAILED, f"internal error: {exc!r}")
        finally:
            self._queue.close()

    def _schedule_reconnect(self, reason: str) -> bool:
        now = self._clock()
        with self._lock:
            h = self._health
            h.last_error = reason
            h.consecutive_failures += 1
            if h.state == StreamState.LIVE:
                h.gaps.append(Gap(self.stream_id, h.last_frame_wall_s or now, None, reason))
            limit = self.settings.max_reconnects
            if limit is not None and h.consecutive_failures > limit:
                h.state = StreamState.FAILED
                self._close_gap(now)
                log.error(
                    "stream %s failed after %d attempts: %s", self.stream_id, h.consecutive_failures, reason
                )
                return False
            h.state = StreamState.RECONNECTING
            failures = h.consecutive_failures
        delay = self._backoff.delay_s(failures)
        log.warning("stream %s: %s; reconnecting in %.2f s", self.stream_id, reason, delay)
        if self._stop.wait(delay):
            return False
        with self._lock:
            self._health.reconnects += 1
        return True

    def _finish(self, state: StreamState, error: str | None) -> None:
        with self._lock:
            self._health.state = state
            self._health.last_error = error
            self._close_gap(self._clock())

    def _close_gap(self, now: float) -> None:
        gaps = self._health.gaps
        if gaps and gaps[-1].end_wall_s is None:
            gaps[-1] = Gap(gaps[-1].stream_id, gaps[-1].start_wall_s, now, gaps[-1].reason)

    def _open(self) -> Any:
        s = self.settings
        options = dict(self.spec.options)
        if self.spec.kind == SourceKind.RTSP:
            options.setdefault("timeout", str(int(s.read_timeout_s * 1_000_000)))  # socket I/O, microseconds
        elif self.spec.is_network:
            options.setdefault("rw_timeout", str(int(s.read_timeout_s * 1_000_000)))
        return open_container(
            self.spec.target,
            format=self.spec.format,
            options=options,
            timeout_s=(s.connect_timeout_s, s.read_timeout_s),
        )

    def _read_one_connection(self) -> None:
        container = self._open()
        try:
            stream = video_stream(container, self.spec.target)
            configure_decoder(stream, threads=1)  # frame threads would add latency
            connection = _Connection(time_base_of(stream), NearestSampler(self.fps), self._clock())
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                now = self._clock()
                for frame in packet.decode():
                    with self._lock:
                        self._health.decoded_frames += 1
                    for kept, arrived_s in connection.offer(frame, now):
                        self._push(kept, connection, arrived_s)
                connection.check_progress(now, self.settings.first_frame_timeout_s)
        except av.error.ExitError as exc:
            raise StreamStalledError(f"no data for {self.settings.read_timeout_s} s ({exc})") from exc
        finally:
            container.close()

    def _push(self, frame: Any, connection: _Connection, arrived_s: float) -> None:
        captured_s = connection.captured_s(frame)
        rgb = to_rgb(frame, self.size)
        record = Frame(self.stream_id, self._next_index, frame.pts, connection.time_base, rgb, captured_s)
        self._next_index += 1
        try:
            dropped = self._queue.put(record)
        except QueueClosed:
            return
        lag_s = max(0.0, arrived_s - captured_s)
        with self._lock:
            h = self._health
            h.frames += 1
            h.dropped += dropped
            h.last_frame_wall_s = arrived_s
            h.lag_s = lag_s
            h.max_lag_s = max(h.max_lag_s, lag_s)
            h.consecutive_failures = 0
            h.state = StreamState.LIVE
            self._close_gap(arrived_s)


class _Connection:
    """Per-connection state: sampling, the pts-to-real-time mapping, progress.

    Real time of a frame = pts + the smallest (arrival - pts) seen on this connection: the
    earliest-arriving frame defines the path delay, so a late first frame does not make every
    later frame look early, and falling behind shows up as lag.
    """

    def __init__(self, time_base: Fraction, sampler: NearestSampler[tuple[Any, float]], now: float) -> None:
        self.time_base = time_base
        self.sampler = sampler
        self.offset_s: float | None = None  # min(arrival - pts_s)
        self.last_pts_s: float | None = None
        self.last_decoded_s = now

    def offer(self, frame: Any, now: float) -> list[tuple[Any, float]]:
        """Sampled (frame, arrival wall time) pairs decided by this frame's arrival."""
        self.last_decoded_s = now
        if frame.pts is None:
            return []
        pts_s = float(frame.pts * self.time_base)
        if self.last_pts_s is not None and pts_s <= self.last_pts_s:
            return []
        self.last_pts_s = pts_s
        self.offset_s = now - pts_s if self.offset_s is None else min(self.offset_s, now - pts_s)
        return self.sampler.offer(pts_s, (frame, now))

    def captured_s(self, frame: Any) -> float:
        """The real time a frame stands for."""
        assert self.offset_s is not None
        return float(frame.pts * self.time_base) + self.offset_s

    def check_progress(self, now: float, timeout_s: float) -> None:
        """Data keeps coming but nothing decodes (no keyframe yet, or garbage): a stall."""
        if now - self.last_decoded_s > timeout_s:
            what = "no decodable frame" if self.offset_s is None else "no new frame"
            raise StreamStalledError(
                f"{what} for {now - self.last_decoded_s:.1f} s while data arrives (waiting for a keyframe?)"
            )
