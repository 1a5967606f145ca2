"""/v1/events: one event's record, its keyframe thumbnails and an MP4 clip."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from ..deps import AdminKey, ReadKey, ServiceDep
from ..questions import event_path
from ..schemas import EventOut

router = APIRouter(prefix="/v1/events", tags=["events"])
EventPath = Annotated[
    str, Path(min_length=1, max_length=600, description="An event id (`<stream>:<frame>`).")
]


@router.get("/{event_id}", response_model=EventOut, summary="An event's record")
def get_event(event_id: EventPath, service: ServiceDep, _key: ReadKey) -> EventOut:
    event, pinned = service.event(event_id)
    base = event_path(event_id)
    return EventOut(
        event_id=event.event_id,
        stream_id=event.stream_id,
        start_pts_s=event.start_pts_s,
        end_pts_s=event.end_pts_s,
        start_wall_s=event.start_wall_s,
        end_wall_s=event.end_wall_s,
        frames=event.stats.frames,
        tokens_in=event.stats.tokens_in,
        tokens_kept=event.stats.tokens_kept,
        text=event.text,
        pinned=pinned,
        thumbnail_urls=[f"{base}/thumbnail?index={i}" for i in range(len(event.thumbnails))],
        clip_url=f"{base}/clip",
    )


@router.get(
    "/{event_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "A JPEG keyframe"}},
    summary="A keyframe of the event",
)
def thumbnail(
    event_id: EventPath, service: ServiceDep, _key: ReadKey, index: Annotated[int, Query(ge=0, le=64)] = 0
) -> Response:
    data = service.thumbnail(event_id, index)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get(
    "/{event_id}/clip",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}}, "description": "The event as MP4"}},
    summary="The event as an MP4 clip (recorded: cut from the source; live: its keyframes)",
)
async def clip(event_id: EventPath, service: ServiceDep, _key: ReadKey) -> Response:
    data, how = await run_in_threadpool(service.clip, event_id)
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in event_id) + ".mp4"
    return Response(
        data,
        media_type="video/mp4",
        headers={"X-Vidsight-Clip": how, "Content-Disposition": f'inline; filename="{filename}"'},
    )


@router.post("/{event_id}/pin", status_code=204, response_class=Response, summary="Keep an event (admin)")
def pin(event_id: EventPath, service: ServiceDep, _key: AdminKey, pinned: bool = True) -> Response:
    service.memory.pin(event_id, pinned)
    return Response(status_code=204)


@router.delete("/{event_id}", status_code=204, response_class=Response, summary="Delete an event (admin)")
def delete(event_id: EventPath, service: ServiceDep, _key: AdminKey) -> Response:
    from ..errors import NotFoundError

    if not service.memory.delete(event_id):
        raise NotFoundError(f"no event {event_id!r}")
    return Response(status_code=204)
