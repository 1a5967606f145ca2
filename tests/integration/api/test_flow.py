"""The REST API end to end on a real server: a recorded video ingested as a job, found by search,
shown as thumbnails and clips, answered about (JSON and SSE), through the OpenAI-compatible route;
uploads; /metrics and /readyz. Models are tiny random-weight stand-ins: the tests check plumbing,
times and counts, never answer quality."""

import io
import json
import time

import av
import pytest

from vidsight.synth.video import moving_boxes_script, write_video

pytestmark = pytest.mark.integration


def sse(response):
    """The data payloads of a Server-Sent Events response."""
    return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def test_video_job_reports_progress_and_its_counts(ingested):
    assert ingested["progress"] == 1.0
    assert ingested["frames"] == 24  # 12 s at 2 fps
    assert abs(ingested["frames_expected"] - ingested["frames"]) <= 1  # estimated from the header
    assert ingested["events"] >= 2 and 0 < ingested["tokens_kept"] <= ingested["tokens_in"]


def test_search_results_carry_times_scores_thumbnails_and_clips(server, ingested):
    with server.client("read") as c:
        body = c.post("/v1/search", json={"query": "two boxes moving", "streams": ["sample"], "k": 3}).json()
        results = body["results"]
        assert 1 <= len(results) <= 3 and body["latency_ms"] > 0
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        for r in results:
            assert r["stream_id"] == "sample" and 0 <= r["start_s"] <= r["end_s"] <= 12
            assert r["start_wall_s"] is None  # a recorded video is on its pts clock
        thumb = c.get(results[0]["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content[:2] == b"\xff\xd8"
        windowed = c.post(
            "/v1/search", json={"query": "boxes", "streams": ["sample"], "since": 6.5, "until": 12}
        )
        assert all(r["end_s"] > 6.5 and r["start_s"] < 12 for r in windowed.json()["results"])


def test_event_record_and_clip_cut_from_the_source(server, ingested):
    with server.client("read") as c:
        hit = c.post("/v1/search", json={"query": "boxes", "streams": ["sample"], "k": 1}).json()["results"][
            0
        ]
        event = c.get(f"/v1/events/{hit['event_id']}").json()
        assert event["stream_id"] == "sample" and event["frames"] >= 2 and event["thumbnail_urls"]
        clip = c.get(event["clip_url"])
    assert clip.status_code == 200 and clip.headers["x-vidsight-clip"] == "recorded"
    with av.open(io.BytesIO(clip.content)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * stream.time_base) for f in container.decode(stream)]
    span_s = event["end_pts_s"] - event["start_pts_s"] + 0.5  # the last sample stands for 1/fps
    assert times[0] == pytest.approx(0.0, abs=0.05)
    assert times[-1] == pytest.approx(span_s - 1 / 30, abs=0.05)


def test_ask_answers_with_cited_events_as_json_and_as_sse(server, ingested):
    with server.client("read") as c:
        body = c.post(
            "/v1/ask", json={"question": "What moved?", "streams": ["sample"], "max_new_tokens": 6}
        ).json()
        assert body["generated_tokens"] == 6 and body["finish_reason"] == "length"
        assert body["cited"] and all(x["stream_id"] == "sample" for x in body["cited"])
        assert body["visual_tokens"] > 0 and "random weights" in body["model"]
        with c.stream(
            "POST",
            "/v1/ask",
            json={"question": "What moved?", "streams": ["sample"], "max_new_tokens": 5, "stream": True},
        ) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            payloads = sse(r)
    assert payloads[-1] == "[DONE]"
    messages = [json.loads(p) for p in payloads[:-1]]
    tokens = [m for m in messages if m["type"] == "token"]
    done = messages[-1]
    assert len(tokens) == 5 and done["type"] == "answer_done"
    assert done["answer"] == "".join(t["text"] for t in tokens)
    assert body["answer"].startswith(done["answer"])  # greedy: the same question gives the same start


def test_answers_are_capped_by_the_server(server, ingested):
    with server.client("read") as c:
        body = c.post("/v1/ask", json={"question": "Everything?", "max_new_tokens": 4000}).json()
    assert body["generated_tokens"] == 32  # VIDSIGHT_API__MAX_ANSWER_TOKENS


def test_openai_chat_completions_json_and_stream(server, ingested):
    request = {
        "model": "anything",
        "temperature": 0,
        "max_tokens": 4,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What moved?"}],
        "video": {"streams": ["sample"], "since": 0, "until": 12, "k": 2},
    }
    with server.client("read") as c:
        body = c.post("/v1/chat/completions", json=request).json()
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
        assert body["usage"]["completion_tokens"] == 4 and body["choices"][0]["finish_reason"] == "length"
        assert 1 <= len(body["video"]["cited"]) <= 2
        with c.stream("POST", "/v1/chat/completions", json={**request, "stream": True}) as r:
            payloads = sse(r)
        assert c.get("/v1/models").json()["data"][0]["id"] == body["model"]
        bad = c.post("/v1/chat/completions", json={**request, "video": {"streams": ["nope"]}})
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(ch["object"] == "chat.completion.chunk" and ch["id"] == chunks[0]["id"] for ch in chunks)
    text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks)
    assert text == body["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length" and chunks[-1]["video"]["cited"]
    assert bad.status_code == 404


def test_upload_becomes_a_job_and_its_events_are_searchable(server, tmp_path):
    video = write_video(tmp_path / "up.mp4", moving_boxes_script(160, 120, 30, 4), gop_frames=30).path
    with server.client("ingest") as c:
        with open(video, "rb") as f:
            r = c.post(
                "/v1/videos/upload",
                files={"file": ("clip one.mp4", f, "video/mp4")},
                data={"stream_id": "uploaded", "fps": "2"},
            )
        assert r.status_code == 202, r.text
        job = r.json()
        deadline = time.monotonic() + 60
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = c.get(f"/v1/videos/{job['job_id']}").json()
    assert job["state"] == "done" and job["frames"] == 8, job
    with server.client("read") as c:
        results = c.post("/v1/search", json={"query": "box", "streams": ["uploaded"]}).json()["results"]
        streams = {s["stream_id"]: s for s in c.get("/v1/streams").json()["streams"]}
    assert results and {r["stream_id"] for r in results} == {"uploaded"}
    assert streams["uploaded"]["kind"] == "file" and streams["uploaded"]["state"] == "recorded"


def test_metrics_and_readiness(server, ingested):
    with server.client("read") as c:
        c.post("/v1/search", json={"query": "boxes"})
        text = c.get("/metrics").text
        ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok"
    assert ready.json()["checks"]["pipeline"] == "ray"
    for name in [
        'vidsight_query_latency_seconds_count{kind="search"}',
        'vidsight_queue_depth{queue="answers_waiting"}',
        'vidsight_events_stored_total{stream="sample"}',
        "vidsight_ws_clients",
    ]:
        assert name in text, name
