"""Live readers against a real RTSP server (GStreamer) that the tests kill and restart."""

import time

import pytest

from ingest import StreamState, open_source
from ingest.config import IngestSettings
from vidsight.synth.servers import RtspServer, free_port

pytestmark = pytest.mark.integration

FAST_RETRY = IngestSettings(
    connect_timeout_s=3, read_timeout_s=2, first_frame_timeout_s=3, backoff_base_s=0.2, backoff_cap_s=1.0
)


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def drain(source, seconds):
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        frames.extend(source.reader.get_batch(64, 0.2))
    return frames


@pytest.mark.allow_error_logs
def test_reader_reconnects_after_server_restart_and_records_the_gap():
    port = free_port()
    server = RtspServer(port).start()
    source = open_source(f"rtsp://127.0.0.1:{port}/s0", fps=5.0, settings=FAST_RETRY)
    try:
        source.reader.start()
        before = drain(source, 3.0)
        assert len(before) >= 5
        server.stop()
        wait_for(lambda: source.health().state == StreamState.RECONNECTING, 10, "reconnecting state")
        assert source.health().gaps and source.health().gaps[-1].end_wall_s is None
        time.sleep(1.0)
        server = RtspServer(port).start()
        wait_for(lambda: source.health().state == StreamState.LIVE, 20, "frames to resume")
        after = drain(source, 2.0)
        assert len(after) >= 3
        health = source.health()
        assert health.reconnects >= 1
        gap = health.gaps[-1]
        assert gap.end_wall_s is not None and gap.duration_s >= 1.0
        assert "stream" in gap.reason.lower() or "data" in gap.reason.lower()
        indices = [f.index for f in before + after]
        assert indices == sorted(indices) and len(set(indices)) == len(indices)
        assert after[0].wall_time_s > gap.end_wall_s - 5
    finally:
        source.close()
        server.stop()


def test_stream_without_keyframes_stalls_without_hurting_a_healthy_stream():
    with RtspServer(no_keyframes=True) as bad_server, RtspServer() as good_server:
        bad = open_source(bad_server.url(), fps=5.0, settings=FAST_RETRY)
        good = open_source(good_server.url(), fps=5.0, settings=FAST_RETRY)
        try:
            bad.reader.start()
            good.reader.start()
            good_frames = drain(good, 8.0)
            bad_health = bad.health()
            assert bad_health.frames == 0
            assert bad_health.state in (StreamState.CONNECTING, StreamState.RECONNECTING)
            assert "keyframe" in (bad_health.last_error or "")
            assert len(good_frames) >= 20
            assert good.health().state == StreamState.LIVE
        finally:
            bad.close()
            good.close()


@pytest.mark.allow_error_logs
def test_unreachable_host_ends_failed_after_bounded_retries():
    settings = FAST_RETRY.model_copy(update={"max_reconnects": 2, "connect_timeout_s": 1})
    source = open_source(f"rtsp://127.0.0.1:{free_port()}/s0", settings=settings)
    started = time.monotonic()
    frames = list(source)  # iteration ends when the reader gives up: no hang
    health = source.health()
    assert frames == []
    assert health.state == StreamState.FAILED
    assert health.reconnects == 2
    assert health.last_error
    assert time.monotonic() - started < 20


def test_slow_consumer_drops_oldest_and_stays_real_time():
    settings = FAST_RETRY.model_copy(update={"max_queue_frames": 3})
    with RtspServer() as server:
        source = open_source(server.url(), fps=10.0, settings=settings)
        try:
            source.reader.start()
            wait_for(lambda: source.health().frames > 0, 10, "first frame")
            time.sleep(3.0)  # a consumer that does not keep up
            health = source.health()
            assert health.dropped >= 10
            frames = source.reader.get_batch(10, 1.0)
            assert len(frames) == 3
            newest_wall = frames[-1].wall_time_s
            assert time.time() - newest_wall < 1.0  # what the consumer gets is recent, not a backlog
            assert health.max_lag_s < 1.0
        finally:
            source.close()


def test_live_reader_runs_as_a_ray_actor(ray_local):
    import ray

    from vidsight.pipeline import LiveReaderActor

    with RtspServer() as server:
        actor = LiveReaderActor.remote(server.url(), "gate", 5.0, FAST_RETRY, 160)
        try:
            frames = []
            deadline = time.monotonic() + 15
            while len(frames) < 5 and time.monotonic() < deadline:
                frames.extend(ray.get(actor.get_batch.remote(8, 1.0)))
            health = ray.get(actor.health.remote())
            assert len(frames) >= 5
            assert frames[0].stream_id == "gate" and frames[0].rgb.shape == (90, 160, 3)
            assert health["state"] == "live" and health["frames"] >= 5
        finally:
            ray.get(actor.close.remote())
            ray.kill(actor)
