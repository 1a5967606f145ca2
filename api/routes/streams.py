"""/v1/streams: live streams (add with URL and options, list with health, get, remove)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ..deps import IngestKey, ReadKey, ServiceDep
from ..schemas import StreamCreate, StreamId, StreamList, StreamOut

router = APIRouter(prefix="/v1/streams", tags=["streams"])
StreamPath = Annotated[StreamId, Path(description="A stream id.")]


@router.post("", response_model=StreamOut, status_code=201, summary="Add a live stream (RTSP, live HLS)")
def add_stream(body: StreamCreate, service: ServiceDep, _key: IngestKey) -> StreamOut:
    return StreamOut(**service.catalog.add_live(body.url, body.stream_id, body.fps, body.max_side_px))


@router.get("", response_model=StreamList, summary="Streams (live and recorded) with health")
def list_streams(service: ServiceDep, _key: ReadKey) -> StreamList:
    return StreamList(streams=[StreamOut(**row) for row in service.catalog.all()])


@router.get("/{stream_id}", response_model=StreamOut, summary="One stream with health")
def get_stream(stream_id: StreamPath, service: ServiceDep, _key: ReadKey) -> StreamOut:
    return StreamOut(**service.catalog.get(stream_id))


@router.delete("/{stream_id}", status_code=204, response_class=Response, summary="Stop a stream")
def remove_stream(
    stream_id: StreamPath,
    service: ServiceDep,
    _key: IngestKey,
    delete_events: Annotated[bool, Query(description="Also delete its stored events.")] = False,
) -> Response:
    service.catalog.remove(stream_id, delete_events)
    return Response(status_code=204)
