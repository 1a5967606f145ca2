"""When a text index exists (<data_dir>/text: OCR and speech chunks), /v1/search fuses it with the
visual bank (memory.hybrid): words on a slide or in the narration find their time range. The text
embeddings are real (all-MiniLM-L6-v2); the visual side is the tiny random SigLIP."""

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from vidsight.settings import Settings
from vidsight.synth.video import moving_boxes_script, write_video

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from encoder.text import TextChunk, TextEmbedder
    from encoder.text.config import IndexSettings
    from memory.text_index import TextIndex

    data = tmp_path_factory.mktemp("hybrid") / "data"
    (data / "videos").mkdir(parents=True)
    write_video(data / "videos" / "lecture.mp4", moving_boxes_script(160, 120, 30, 40, [20.0]), gop_frames=30)
    embedder = TextEmbedder(IndexSettings())
    chunks = [
        TextChunk("lecture", "ocr", 0.0, 20.0, "Photosynthesis converts light into chemical energy"),
        TextChunk("lecture", "speech", 20.0, 40.0, "and that is why the tide follows the moon"),
    ]
    TextIndex(data / "text", embedder.dim).add(chunks, np.asarray(embedder.encode([c.text for c in chunks])))
    settings = Settings(
        data_dir=data, api={"pipeline": "local", "require_keys": False, "text_channels": False}
    )
    with TestClient(create_app(settings)) as c:
        job = c.post("/v1/videos", json={"path": "lecture.mp4", "stream_id": "lecture"}).json()
        while job["state"] in ("queued", "running"):
            time.sleep(0.2)
            job = c.get(f"/v1/videos/{job['job_id']}").json()
        assert job["state"] == "done"
        yield c


def test_slide_words_find_the_slide_and_narration_finds_its_range(client):
    assert client.get("/readyz").json()["checks"]["text_index"] == "2 chunks"
    slide = client.post("/v1/search", json={"query": "photosynthesis", "channels": ["ocr"]}).json()["results"]
    assert slide[0]["channel"] == "ocr" and (slide[0]["start_s"], slide[0]["end_s"]) == (0.0, 20.0)
    assert "hotosynthesis" in slide[0]["snippet"]
    spoken = client.post(
        "/v1/search",
        json={"query": "why does the tide follow the moon", "streams": ["lecture"], "channels": ["speech"]},
    ).json()["results"]
    assert spoken[0]["channel"] == "speech" and spoken[0]["start_s"] == 20.0
    fused = client.post("/v1/search", json={"query": "photosynthesis", "k": 5}).json()["results"]
    best = fused[0]  # the slide's text and the visual event of the same range, fused into one result
    assert best["channel"] == "fused" and best["start_s"] == 0.0 and 0 < best["score"] <= 1.0
    assert "@" not in best["event_id"] and client.get(best["clip_url"]).status_code == 200


def test_ask_puts_the_scope_text_in_the_prompt_and_narrated_events_get_more_tokens(client):
    """The user turn carries the slide text and transcript with their times (issue 7: ask over a
    lecture); the budget favours the event with speech over the silent one at equal relevance."""
    from api.questions import Scope

    service = client.app.state.service
    questions = service.questions
    _, cited, prompt = questions._context("what is the tide?", Scope(["lecture"]), 4)
    assert cited
    assert prompt.endswith("Question: what is the tide?")
    assert "[00:00-00:20] slide: Photosynthesis converts light into chemical energy" in prompt
    assert "[00:20-00:40] speech: and that is why the tide follows the moon" in prompt

    events = [service.memory.get_event(h.event_id) for h in cited]
    weights = service.text.speech_weights(events)
    assert weights is not None and len(weights) == len(events)
    by_time = sorted(zip(events, weights, strict=True), key=lambda ew: ew[0].start_pts_s)
    silent, narrated = by_time[0][1], by_time[-1][1]  # slide only (0-20 s), then speech (20-40 s)
    assert narrated > silent > 0

    answer = client.post("/v1/ask", json={"question": "what is the tide?", "streams": ["lecture"]}).json()
    assert answer["answer"] is not None and answer["cited"]
