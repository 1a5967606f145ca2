"""/v1/videos: recorded videos (upload, server-side path or http(s) URL) ingested as background jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile

from ..deps import IngestKey, JobsKey, ServiceDep
from ..schemas import JobList, JobOut, StreamId, VideoCreate

router = APIRouter(prefix="/v1/videos", tags=["videos"])


@router.post("", response_model=JobOut, status_code=202, summary="Ingest a server-side file or a URL")
def add_video(body: VideoCreate, service: ServiceDep, _key: IngestKey) -> JobOut:
    job = service.catalog.submit_video(body.path, body.url, body.stream_id, body.fps)
    return JobOut(**job.as_dict())


@router.post("/upload", response_model=JobOut, status_code=202, summary="Upload a video file and ingest it")
async def upload_video(
    service: ServiceDep,
    _key: IngestKey,
    file: Annotated[UploadFile, File(description="The video file.")],
    stream_id: Annotated[StreamId | None, Form()] = None,
    fps: Annotated[float | None, Form(gt=0, le=30)] = None,
) -> JobOut:
    job = await service.catalog.submit_upload(file, stream_id, fps)
    return JobOut(**job.as_dict())


@router.get("", response_model=JobList, summary="Video jobs, oldest first")
def list_jobs(service: ServiceDep, _key: JobsKey) -> JobList:
    return JobList(jobs=[JobOut(**job.as_dict()) for job in service.jobs.all()])


@router.get("/{job_id}", response_model=JobOut, summary="One job with its progress")
def get_job(
    job_id: Annotated[str, Path(max_length=64, pattern=r"^[0-9a-f]+$")], service: ServiceDep, _key: JobsKey
) -> JobOut:
    return JobOut(**service.jobs.get(job_id).as_dict())
