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
