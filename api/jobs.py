"""Video jobs: a recorded file (upload, server-side path or http(s) URL) ingested in the background.

At most `max_jobs` run at once (a thread each); the rest wait in order. A job's record (state,
progress, counts, error) is kept in Redis as JSON, so listings survive a restart; a job that was
running when the server stopped is marked failed on the next start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, cast

import av

from compressor import CompressorSettings, Event
from ingest import IngestError
from ingest.config import IngestSettings
from vidsight.processing import StreamProcessor

from .errors import NotFoundError
from .stages import Stages

log = logging.getLogger(__name__)
_BATCH_FRAMES = 8


@dataclass
class Job:
    job_id: str
    stream_id: str
    source: str  # local path or URL
    fps: float
    state: str = "queued"  # queued | running | done | failed | cancelled
    frames: int = 0
    frames_expected: int | None = None
    events: int = 0
    tokens_in: int = 0
    tokens_kept: int = 0
    error: str | None = None
    created_s: float = 0.0
    started_s: float | None = None
    finished_s: float | None = None

    @property
    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        if not self.frames_expected:
            return 0.0
        return min(0.99, self.frames / self.frames_expected)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "progress": round(self.progress, 4)}


def expected_frames(source: str, fps: float, timeout_s: float) -> int | None:
    """Kept frames a file will give at `fps`, from its header's duration (None when unknown)."""
    try:
        with av.open(source, timeout=timeout_s) as container:
            if container.duration:
                return int(container.duration / 1_000_000 * fps) + 1
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                return int(float(stream.duration * stream.time_base) * fps) + 1
    except (av.error.FFmpegError, OSError, IndexError) as exc:
        log.debug("no duration for %s: %s", source, exc)
    return None


class VideoJobs:
    def __init__(
        self,
        stages: Stages,
        ingest: IngestSettings,
        compressor: CompressorSettings,
        sink: Callable[[Event], None],
        register: Callable[[str, str], None],
        redis: Any,
        *,
        max_jobs: int,
        redis_key: str = "vidsight:jobs",
        text_for_job: Callable[[], Any] | None = None,
    ) -> None:
        self.stages = stages
        self.ingest = ingest
        self.compressor = compressor
        self.sink = sink
        self.register = register  # (stream_id, source): registers a recorded stream with memory
        self.text_for_job = text_for_job  # -> the text channels for one video (or None: visual only)
        self.redis = redis
        self.redis_key = redis_key
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="video-job")
        self._closed = threading.Event()
        self._load()

    def submit(self, source: str, stream_id: str, fps: float | None) -> Job:
        job = Job(
            uuid.uuid4().hex[:16], stream_id, source, fps or self.ingest.sample_fps, created_s=time.time()
        )
        with self._lock:
            self._jobs[job.job_id] = job
        self._save(job)
        self._pool.submit(self._run, job)
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no video job {job_id!r}")
        return job

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created_s)

    def queued(self) -> int:
        return sum(1 for j in list(self._jobs.values()) if j.state == "queued")

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for job in self.all():
            if job.state == "queued":
                self._finish(job, "cancelled", "server stopped before the job started")

    # -- running ---------------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        if self._closed.is_set():
            return
        job.state, job.started_s = "running", time.time()
        self._save(job)
        try:
            job.frames_expected = expected_frames(job.source, job.fps, self.ingest.connect_timeout_s)
            self.register(job.stream_id, job.source)
            processor = StreamProcessor(job.stream_id, self.stages.frame_encoder(), self.compressor)
            self._ingest(job, processor)
        except _Stopped:
            self._finish(job, "cancelled", "the server stopped during the job")
        except IngestError as exc:
            self._finish(job, "failed", str(exc))
        except Exception as exc:  # a failed job is reported on its record, never crashes the server
            log.warning("video job %s failed: %s", job.job_id, exc, exc_info=True)
            self._finish(job, "failed", f"{type(exc).__name__}: {exc}")
        else:
            self._finish(job, "cancelled" if self._closed.is_set() else "done", None)

    def _ingest(self, job: Job, processor: StreamProcessor) -> None:
        def closed(event: Event) -> None:  # progress; events reach memory through the sink
            job.events += 1
            job.tokens_in += event.stats.tokens_in
            job.tokens_kept += event.stats.tokens_kept
            job.frames = processor.report.frames

        settings = self.ingest.model_copy(update={"sample_fps": job.fps})
        if job.source.startswith(("http://", "https://")):
            self._ingest_sequential(job, processor, settings, closed)
            return
        from vidsight.recorded import ingest_recorded

        text = self.text_for_job() if self.text_for_job is not None else None
        try:
            ingest_recorded(
                job.source,
                cast(
                    StreamProcessor, _Watched(processor, job, self._closed)
                ),  # a StreamProcessor by duck typing
                settings,
                text=text,
                sink=self.sink,
                executor=self.stages.file_executor(),
                on_event=closed,
            )
        finally:
            if text is not None:
                text.close()
        job.frames = processor.report.frames

    def _ingest_sequential(
        self,
        job: Job,
        processor: StreamProcessor,
        settings: IngestSettings,
        on_event: Callable[[Event], None],
    ) -> None:
        from ingest import open_source

        source = open_source(job.source, fps=job.fps, stream_id=job.stream_id, settings=settings)
        watched = _Watched(processor, job, self._closed)
        try:
            batch = []
            for frame in source:
                batch.append(frame)
                if len(batch) >= _BATCH_FRAMES:
                    for event in watched.process(batch):
                        on_event(event)
                        self.sink(event)
                    batch = []
            for event in watched.process(batch) + watched.flush():
                on_event(event)
                self.sink(event)
        finally:
            source.close()

    def _finish(self, job: Job, state: str, error: str | None) -> None:
        job.state, job.error, job.finished_s = state, error, time.time()
        self._save(job)

    # -- records ---------------------------------------------------------------------------------

    def _save(self, job: Job) -> None:
        try:
            self.redis.hset(self.redis_key, job.job_id, json.dumps(asdict(job)))
        except Exception as exc:  # the in-process record stays right; only the restart copy is stale
            log.warning("video job %s: could not save its record: %s", job.job_id, exc)

    def _load(self) -> None:
        try:
            stored = self.redis.hgetall(self.redis_key)
        except Exception as exc:
            log.warning("video jobs: could not read stored records: %s", exc)
            return
        for value in stored.values():
            job = Job(**json.loads(value))
            if job.state in ("queued", "running"):
                job.state, job.error = "failed", "interrupted: the server stopped during the job"
                self._save(job)
            self._jobs[job.job_id] = job


class _Watched:
    """A StreamProcessor that keeps the job's frame count current and stops when the server does."""

    def __init__(self, processor: StreamProcessor, job: Job, closed: threading.Event) -> None:
        self.processor = processor
        self.job = job
        self.closed = closed
        self.stream_id = processor.stream_id
        self.report = processor.report

    def process(self, frames: Any) -> list[Event]:
        if self.closed.is_set():
            raise _Stopped()
        events = self.processor.process(frames)
        self.job.frames = self.processor.report.frames
        return events

    def flush(self) -> list[Event]:
        return self.processor.flush()


class _Stopped(Exception):
    """The server is stopping; the job ends as cancelled."""
