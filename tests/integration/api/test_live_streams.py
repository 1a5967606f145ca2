"""A live RTSP stream added through the API: it runs in its Ray actor and processing loop, its
events reach memory and /v1/live clients, its health shows in /v1/streams, /metrics and pushes,
and removing it flushes its open event; a stream that cannot connect never holds up another."""

import asyncio
import json
import time

import pytest
import websockets

from vidsight.synth.servers import RtspServer, rtsp_server_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not rtsp_server_available(), reason="gst-rtsp-server is not installed"),
]


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.mark.allow_error_logs
async def test_live_stream_lifecycle_with_health_events_and_pushes(server):
    with RtspServer(width=320, height=240, fps=10) as rtsp:
        ws = await websockets.connect(f"{server.ws_url}?token={server.keys['read']}")
        await ws.send(json.dumps({"type": "subscribe", "topics": ["events", "stream_health"]}))
        with server.client("admin") as c:
            dead = c.post("/v1/streams", json={"url": "rtsp://127.0.0.1:9/nothing", "stream_id": "dead"})
            r = c.post("/v1/streams", json={"url": rtsp.url(), "stream_id": "cam", "fps": 4})
            assert dead.status_code == 201 and r.status_code == 201, (dead.text, r.text)
            assert c.post("/v1/streams", json={"url": rtsp.url(), "stream_id": "cam"}).status_code == 409

            def cam():
                return c.get("/v1/streams/cam").json()

            # max_event_grids=5 at 4 fps: an event closes every ~2.5 s of live video
            wait_for(lambda: cam()["events"] >= 2, 60, "two live events")
            health = cam()
            assert health["state"] == "live" and health["kind"] == "live" and health["fps"] > 1
            assert health["processing_lag_s"] < 2.0
            assert 0 < health["tokens_kept"] <= health["tokens_in"]
            assert c.get("/v1/streams/dead").json()["state"] in ("connecting", "reconnecting")
            hits = c.post("/v1/search", json={"query": "test pattern", "streams": ["cam"]}).json()["results"]
            assert hits and all(
                h["start_wall_s"] is not None and h["start_s"] == h["start_wall_s"] for h in hits
            )
            clip = c.get(hits[0]["clip_url"])
            assert clip.status_code == 200 and clip.headers["x-vidsight-clip"] == "keyframes"
            metrics = c.get("/metrics").text
            assert 'vidsight_stream_fps{stream="cam"}' in metrics
            assert 'vidsight_stream_reconnects_total{stream="dead"}' in metrics

            events_before = cam()["events"]
            assert c.delete("/v1/streams/cam").status_code == 204
            listed = {s["stream_id"]: s for s in c.get("/v1/streams").json()["streams"]}
            assert listed["cam"]["state"] == "stopped"
            assert c.delete("/v1/streams/dead?delete_events=true").status_code == 204
            assert "dead" not in {s["stream_id"] for s in c.get("/v1/streams").json()["streams"]}
            assert c.delete("/v1/streams/dead").status_code == 404

        kinds, deadline = set(), time.monotonic() + 10
        while {"event", "stream_health"} - kinds and time.monotonic() < deadline:
            kinds.add(json.loads(await asyncio.wait_for(ws.recv(), 10))["type"])
        await ws.close()
    assert {"event", "stream_health"} <= kinds
    assert events_before >= 2


@pytest.mark.slow
@pytest.mark.allow_error_logs
def test_live_streams_running_at_shutdown_resume_when_the_server_starts_again(tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from vidsight.settings import Settings

    settings = Settings(data_dir=tmp_path, api={"pipeline": "local", "require_keys": False})
    with RtspServer(width=160, height=120, fps=10) as rtsp:
        with TestClient(create_app(settings)) as c:
            assert (
                c.post("/v1/streams", json={"url": rtsp.url(), "stream_id": "kept", "fps": 2}).status_code
                == 201
            )
            assert (
                c.post("/v1/streams", json={"url": rtsp.url(), "stream_id": "gone", "fps": 2}).status_code
                == 201
            )
            assert c.delete("/v1/streams/gone").status_code == 204
        with TestClient(create_app(settings)) as c:
            rows = {s["stream_id"]: s for s in c.get("/v1/streams").json()["streams"]}
            assert rows["gone"]["state"] == "stopped"
            assert rows["kept"]["kind"] == "live" and rows["kept"]["source"] == rtsp.url()
            wait_for(
                lambda: c.get("/v1/streams/kept").json()["frames"] >= 2, 30, "the resumed stream's frames"
            )
