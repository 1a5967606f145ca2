"""The streams a server knows: live ones it runs (StreamManager) and recorded ones it ingested
(VideoJobs), both registered with the memory bank (clock "wall" for live, "pts" for files), with
every client-given URL and path checked against the allow-lists first.

Live streams are registered with `active: true` and their options; a server that starts again
resumes them (`resume`), and `remove` marks them inactive (or deletes their events).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import UploadFile

from ingest.uris import SourceKind, default_stream_id, parse_source

from .config import ApiSettings
from .errors import BadRequestError, ConflictError, NotFoundError
from .jobs import Job, VideoJobs
from .security import PathPolicy, check_url
from .streams import StreamManager

log = logging.getLogger(__name__)


class Catalog:
    def __init__(
        self,
        api: ApiSettings,
        allowed_schemes: list[str],
        memory: Any,
        streams: StreamManager,
        jobs: VideoJobs,
        paths: PathPolicy,
        upload_dir: Path,
    ) -> None:
        self.api = api
        self.allowed_schemes = allowed_schemes  # ingest's own list, checked after the API's
        self.memory = memory
        self.streams = streams
        self.jobs = jobs
        self.paths = paths
        self.upload_dir = upload_dir

    # -- live --------------------------------------------------------------------------------------

    def add_live(
        self, url: str, stream_id: str | None, fps: float | None, max_side_px: int | None
    ) -> dict[str, Any]:
        """Check the URL against the allow-lists, register the stream (wall clock) and start it."""
        url = check_url(url, self.api.allowed_url_schemes)
        spec = parse_source(url, allowed_schemes=self.allowed_schemes)
        if spec.kind not in (SourceKind.RTSP, SourceKind.HLS):
            raise BadRequestError(
                f"{url!r} is not a live stream (RTSP or HLS); add files with POST /v1/videos"
            )
        stream_id = stream_id or default_stream_id(url)
        info = self.memory.streams().get(stream_id)
        if info is not None and info.clock != "wall":
            raise ConflictError(f"stream id {stream_id!r} belongs to a recorded video; pick another id")
        if self.streams.has(stream_id):
            raise ConflictError(f"stream {stream_id!r} already exists; remove it first")
        options = {"kind": "live", "source": url, "active": True, "fps": fps, "max_side_px": max_side_px}
        self.memory.register_stream(stream_id, "wall", options)
        return self.streams.add(stream_id, url, fps=fps, max_side_px=max_side_px).snapshot()

    def resume(self) -> list[str]:
        """Start again the live streams that were running when the server last stopped."""
        resumed = []
        for stream_id, info in sorted(self.memory.streams().items()):
            options = info.options or {}
            if info.clock != "wall" or not options.get("active") or self.streams.has(stream_id):
                continue
            try:
                self.streams.add(
                    stream_id,
                    str(options["source"]),
                    fps=options.get("fps"),
                    max_side_px=options.get("max_side_px"),
                )
                resumed.append(stream_id)
            except Exception as exc:  # one stream that cannot start must not keep the server down
                log.warning("could not resume live stream %s: %s", stream_id, exc)
        return resumed

    def remove(self, stream_id: str, delete_events: bool) -> None:
        is_live = self.streams.has(stream_id)
        info = self.memory.streams().get(stream_id)
        if not is_live and info is None:
            raise NotFoundError(f"no stream {stream_id!r}")
        if is_live:
            self.streams.remove(stream_id)
        if delete_events and info is not None:
            self.memory.remove_stream(stream_id)
        elif info is not None and info.clock == "wall":
            self.memory.register_stream(stream_id, "wall", {**info.options, "active": False})

    # -- recorded ------------------------------------------------------------------------------------

    def submit_video(
        self, path: str | None, url: str | None, stream_id: str | None, fps: float | None
    ) -> Job:
        if path is not None:
            source = str(self.paths.resolve(path))
        else:
            allowed = [s for s in self.api.allowed_url_schemes if s in ("http", "https")]
            source = check_url(str(url), allowed)
        return self.jobs.submit(source, stream_id or default_stream_id(source), fps)

    async def submit_upload(self, upload: UploadFile, stream_id: str | None, fps: float | None) -> Job:
        name = Path(upload.filename or "upload.mp4").name
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-100:] or "upload.mp4"
        target = self.upload_dir / f"{uuid.uuid4().hex[:12]}-{safe}"
        await asyncio.to_thread(_copy_upload, upload.file, target)
        return self.jobs.submit(str(target), stream_id or default_stream_id(safe), fps)

    def register_recorded(self, stream_id: str, source: str) -> None:
        info = self.memory.streams().get(stream_id)
        if info is not None and info.clock != "pts":
            raise ConflictError(f"stream id {stream_id!r} belongs to a live stream; pick another id")
        self.memory.register_stream(stream_id, "pts", {"kind": "file", "source": source})

    # -- listing -------------------------------------------------------------------------------------

    def all(self) -> list[dict[str, Any]]:
        """Live streams with their health, then the registered ones that are not running."""
        live = {s["stream_id"]: s for s in self.streams.snapshots()}
        rows = list(live.values())
        counts = self._job_counts()
        for stream_id, info in sorted(self.memory.streams().items()):
            if stream_id in live:
                continue
            options = info.options or {}
            rows.append(
                {
                    "stream_id": stream_id,
                    "kind": "live" if info.clock == "wall" else "file",
                    "source": str(options.get("source", "")),
                    "state": "stopped" if info.clock == "wall" else "recorded",
                    "created_s": info.created_wall_s,
                    **counts.get(stream_id, {}),
                }
            )
        return rows

    def get(self, stream_id: str) -> dict[str, Any]:
        for row in self.all():
            if row["stream_id"] == stream_id:
                return row
        raise NotFoundError(f"no stream {stream_id!r}")

    def _job_counts(self) -> dict[str, dict[str, int]]:
        """What finished video jobs stored per recorded stream."""
        counts: dict[str, dict[str, int]] = {}
        for job in self.jobs.all():
            if job.state != "done":
                continue
            c = counts.setdefault(job.stream_id, {"frames": 0, "events": 0, "tokens_in": 0, "tokens_kept": 0})
            c["frames"] += job.frames
            c["events"] += job.events
            c["tokens_in"] += job.tokens_in
            c["tokens_kept"] += job.tokens_kept
        return counts


def _copy_upload(source: Any, target: Path) -> None:
    source.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(source, out, length=1 << 20)
