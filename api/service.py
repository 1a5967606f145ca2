"""The runtime behind the routes: one `Service`, built from Settings in the app's lifespan and handed
to routes by typed dependencies (api/deps.py). No module globals.

It opens the memory bank (embedded or configured Redis), the pipeline stages (Ray or local), the
LLM runner and the alert engine; runs live streams, video jobs and the WebSocket hub; and shuts
everything down in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compressor import Event
from vidsight.settings import Settings

from . import clips
from .catalog import Catalog
from .errors import NotFoundError, UnavailableError
from .jobs import VideoJobs
from .live import LiveHub, relay_alerts
from .metrics import Metrics
from .questions import Questions, event_path
from .redis_conn import connect_redis
from .security import KeyStore, PathPolicy, RateLimiter
from .stages import Stages, TextEncoder, make_stages
from .streams import StreamManager
from .text_search import TextStore

log = logging.getLogger(__name__)


def model_names(settings: Settings) -> dict[str, str]:
    """Which weights answer: real ids, or the presets built with random weights."""
    enc, llm = settings.encoder, settings.llm
    known = ("tiny", "3B", "7B", "so400m")
    return {
        "vision_tower": enc.vlm_model
        if enc.vlm_model not in known
        else f"qwen2.5-vl-{enc.vlm_model} (random weights)",
        "retrieval": enc.retrieval_model
        if enc.retrieval_model not in known
        else f"siglip-{enc.retrieval_model} (random weights)",
        "llm": llm.model_id or f"qwen2.5-vl-{llm.model_preset} (random weights)",
    }


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.api = settings.api
        self.metrics = Metrics()
        self.hub = LiveHub(self.api, self.metrics)
        self.limiter = RateLimiter(self.api.rate_per_s, self.api.rate_burst)
        roots = self.api.path_roots or [Path(settings.data_dir) / "videos"]
        self.paths = PathPolicy(roots)
        self.upload_dir = Path(settings.data_dir) / "uploads"
        self.models = model_names(settings)
        self.started_s: float | None = None
        self.alerts: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.hub.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open)
        self.questions = Questions(
            self.api,
            memory=self.memory,
            embed_texts=self.embed_texts,
            runner=self.runner,
            compressor_settings=self.settings.compressor,
            ask_events=self.settings.llm.ask_events,
            metrics=self.metrics,
            text_search=self.text.search,
            text_context=self.text,
        )
        await self._start_alerts()
        self._tasks.append(asyncio.create_task(self._push_health()))
        self._follower = threading.Thread(target=self._follow_events, name="event-follower", daemon=True)
        self._follower.start()
        self.metrics.watch(self.stream_snapshots, self.queue_depths)
        resumed = await asyncio.to_thread(self.catalog.resume)
        if resumed:
            log.info("resumed live streams: %s", ", ".join(resumed))
        self.started_s = time.time()
        log.info("vidsight service ready (pipeline=%s, models=%s)", self.stages.kind, self.models)

    def _open(self) -> None:
        from llm import Runner
        from memory import MemoryBank

        s = self.settings
        for folder in (Path(s.data_dir) / "videos", self.upload_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.memory = MemoryBank(s.memory, data_dir=s.data_dir, redis_url=s.redis_url)
        self.redis = connect_redis(self.memory.redis.where, is_socket=s.redis_url is None)
        self.keys = KeyStore(self.redis, self.api.keys_prefix)
        self.stages: Stages = make_stages(self.api.pipeline, s.encoder, s.ray_address)
        self.runner = Runner(s.llm)
        if self.runner.device.type == "cuda":
            # Compile the decode step and capture the prefill graphs before the first question, not
            # during it (minutes of compilation would otherwise land on one user's time to first token).
            self.runner.warmup()
        self.text = TextStore(s.text, Path(s.data_dir), extract_in_jobs=self.api.text_channels)
        self.streams = StreamManager(
            self.stages,
            s.ingest,
            s.compressor,
            self.store_event,
            max_streams=self.api.max_streams,
            batch_frames=self.api.live_batch_frames,
            poll_s=self.api.live_poll_s,
            ocr=self.text.shared_ocr() if self.api.text_channels and s.text.ocr.enabled else None,
        )
        self.jobs = VideoJobs(
            self.stages,
            s.ingest,
            s.compressor,
            self.store_event,
            lambda stream_id, source: self.catalog.register_recorded(stream_id, source),
            self.redis,
            max_jobs=self.api.max_jobs,
            redis_key=s.memory.redis_key_prefix + "jobs",
            text_for_job=self.text.for_job,
        )
        self.catalog = Catalog(
            self.api,
            s.ingest.allowed_schemes,
            self.memory,
            self.streams,
            self.jobs,
            self.paths,
            self.upload_dir,
        )

    async def _start_alerts(self) -> None:
        """The alert engine (api/alerts): it follows the bank's new events on its own; its WebSocket
        messages go to /v1/live clients as `alert`."""
        from .alerts import AlertEngine, LLMVerifier

        settings = self.settings.alerts
        if not settings.enabled:
            return
        where = self.memory.redis.where
        client = connect_redis(where, is_socket=self.settings.redis_url is None, decode=False)
        encoder = await asyncio.to_thread(TextEncoder, self.stages)
        self.alerts = AlertEngine(
            settings,
            redis=client,
            memory=self.memory,
            embed_text=encoder,
            embed_passage=self.text.embedder,
            verifier=LLMVerifier(self.runner, settings.verify),
        )
        await self.alerts.start()
        self._tasks.append(asyncio.create_task(relay_alerts(self.alerts.subscribe(), self.hub)))

    def alert_engine(self) -> Any:
        if self.alerts is None:
            raise UnavailableError("alerts are disabled on this server (alerts.enabled=false)")
        return self.alerts

    async def stop(self) -> None:
        """Graceful: stop taking work, flush open events of live streams, finish or cancel jobs, close
        the bank (snapshot) last."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.alerts is not None:
            with contextlib.suppress(Exception):
                await self.alerts.stop()
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        for name in ("streams", "jobs"):
            part = getattr(self, name, None)
            if part is not None:
                part.close()
        if self._follower is not None:
            self._follower.join(5.0)
        for name in ("stages",):
            part = getattr(self, name, None)
            if part is not None:
                part.close()
        memory = getattr(self, "memory", None)
        if memory is not None:
            memory.close()

    # -- events ----------------------------------------------------------------------------------

    def store_event(self, event: Event) -> None:
        """Where every closed event goes (called from stream and job threads)."""
        self.memory.add(event)
        self.metrics.events_stored.labels(event.stream_id).inc()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.stages.embed_texts(texts)

    def _follow_events(self) -> None:
        """Push new events of any writer (this server, `vidsight ingest`) to /v1/live clients."""
        last_id = "$"
        while not self._stop.is_set():
            try:
                entries = self.memory.follow(last_id, block_ms=500, count=200)
            except Exception as exc:  # Redis away: health says so; keep trying
                log.debug("event follower: %s", exc)
                self._stop.wait(1.0)
                continue
            for entry in entries:
                last_id = entry.entry_id
                if entry.op != "add":
                    continue
                self.hub.broadcast_threadsafe(
                    "events",
                    {
                        "type": "event",
                        "event_id": entry.event_id,
                        "stream_id": entry.stream_id,
                        "start_pts_s": entry.start_pts_s,
                        "end_pts_s": entry.end_pts_s,
                        "start_wall_s": entry.start_wall_s,
                        "end_wall_s": entry.end_wall_s,
                        "thumbnail_url": event_path(entry.event_id) + "/thumbnail",
                    },
                )

    async def _push_health(self) -> None:
        while True:
            await asyncio.sleep(self.api.health_push_interval_s)
            snapshots = self.stream_snapshots()
            if snapshots:
                self.hub.broadcast("stream_health", {"type": "stream_health", "streams": snapshots})
                await asyncio.to_thread(self._publish_health, snapshots)

    def _publish_health(self, snapshots: list[dict[str, Any]]) -> None:
        for snap in snapshots:
            try:
                self.memory.set_stream_health(snap["stream_id"], snap)
            except Exception as exc:  # health is advisory; never fail a stream over it
                log.debug("stream health for %s not published: %s", snap["stream_id"], exc)

    def stream_snapshots(self) -> list[dict[str, Any]]:
        return self.streams.snapshots() if hasattr(self, "streams") else []

    # -- events, thumbnails, clips ------------------------------------------------------------------

    def event(self, event_id: str) -> tuple[Event, bool]:
        """(event, pinned)."""
        event = self.memory.get_event(event_id)
        row = self.memory.writer_for(event.stream_id).event_row(event_id)
        return event, bool(row.pinned)

    def thumbnail(self, event_id: str, index: int) -> bytes:
        event = self.memory.get_event(event_id)
        if not 0 <= index < len(event.thumbnails):
            raise NotFoundError(
                f"event {event_id!r} has {len(event.thumbnails)} thumbnails; asked for #{index}"
            )
        return event.thumbnails[index]

    def clip(self, event_id: str) -> tuple[bytes, str]:
        """(MP4 bytes, how it was made: "recorded" or "keyframes")."""
        event = self.memory.get_event(event_id)
        info = self.memory.streams().get(event.stream_id)
        options = (info.options or {}) if info is not None else {}
        # "source": streams this server registered; "uri": those `vidsight ingest` registered
        source = str(options.get("source") or options.get("uri") or "")
        if info is not None and info.clock == "pts" and source:
            tail_s = 1.0 / self.settings.ingest.sample_fps
            data = clips.cut_recorded(
                source, event.start_pts_s, event.end_pts_s + tail_s, max_s=self.api.max_clip_s
            )
            return data, "recorded"
        return clips.keyframe_clip(event.thumbnails, event.duration_s), "keyframes"

    # -- health ----------------------------------------------------------------------------------

    def queue_depths(self) -> dict[str, int]:
        depths = {"answers_waiting": self.questions.waiting, "ws_outgoing": self.hub.queued()}
        depths["video_jobs_queued"] = self.jobs.queued()
        for snap in self.stream_snapshots():
            depths[f"live_frames:{snap['stream_id']}"] = int(snap.get("queue_frames") or 0)
        return depths

    def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            health = self.memory.health()
            checks["memory"] = health.state
            checks["redis"] = health.redis.state
        except Exception as exc:
            checks["memory"] = f"error: {exc}"
        checks["pipeline"] = self.stages.kind
        checks["llm"] = "ok" if self.runner is not None else "missing"
        checks["alerts"] = "ok" if self.alerts is not None else "off"
        checks["text_index"] = f"{len(self.text.index)} chunks"
        return checks
