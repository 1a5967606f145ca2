"""End to end on a generated video: a sign reading "EVACUATE NOW" appears at a scripted time. The
video is decoded (ingest), encoded and cut into events (tiny encoder presets, compressor), each
event's middle frame is read by the real OCR (rapidocr via encoder.text), the events go into the
memory bank, and the running engine follows the bank's new-event stream. The alert about an
evacuation fires on exactly the event with the sign; an alert about something absent never fires.

With offline weights, text is the meaningful channel: the SigLIP here is tiny and random, so its
scores are noise, and no firing may come from it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from vidsight.synth.video import Box, Scene, SceneScript, render_frame

pytestmark = pytest.mark.integration
W, H, FPS, SCENE_S, SCENES = 320, 240, 4, 3.0, 8
SIGN_S = (12.0, 15.0)  # the fifth scene


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def scripted_frame(script: SceneScript, t_s: float) -> np.ndarray:
    rgb = render_frame(script, t_s)
    if SIGN_S[0] <= t_s < SIGN_S[1]:
        from PIL import Image, ImageDraw

        image = Image.fromarray(rgb)
        draw = ImageDraw.Draw(image)
        draw.rectangle((30, 70, 290, 170), fill=(255, 255, 255))
        draw.text((45, 100), "EVACUATE NOW", font=_font(30), fill=(200, 0, 0))
        rgb = np.asarray(image)
    return rgb


def write_scripted_video(path) -> None:
    def box(i: int) -> Box:
        return Box((30 * i, 200 - 20 * i, 90), (40, 30), (10.0 + 20 * i, 20.0), (25.0, 15.0))

    scenes = tuple(Scene(i * SCENE_S, seed=i + 1, boxes=(box(i),)) for i in range(SCENES))
    script = SceneScript(W, H, FPS, SCENE_S * SCENES, scenes)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        for i in range(int(script.duration_s * FPS)):
            frame = av.VideoFrame.from_ndarray(scripted_frame(script, i / FPS), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.fixture(scope="module")
def scripted_events(tmp_path_factory):
    """Events of the generated video, each with the OCR text of its middle frame."""
    from encoder import Encoder
    from encoder.text import SlideOCR
    from encoder.text.config import OCRSettings
    from ingest import decode_file
    from vidsight.processing import StreamProcessor
    from vidsight.settings import Settings

    path = tmp_path_factory.mktemp("video") / "scripted.mp4"
    write_scripted_video(path)
    settings = Settings()
    frames = list(decode_file(path, fps=2.0, workers=1, stream_id="lobby-cam"))
    processor = StreamProcessor("lobby-cam", Encoder(settings.encoder), settings.compressor)
    events = processor.process(frames) + processor.flush()
    ocr = SlideOCR(OCRSettings())
    with_text = []
    for event in events:
        inside = [f for f in frames if event.start_pts_s <= f.pts_s <= event.end_pts_s]
        lines = ocr.read_lines(inside[len(inside) // 2].rgb)
        with_text.append(dataclasses.replace(event, text="\n".join(line.text for line in lines)))
    return with_text


async def test_the_alert_fires_on_the_scripted_sign_and_an_absent_thing_never_fires(
    scripted_events, make_engine, bank
):
    sign = [e for e in scripted_events if "EVACUATE" in e.text.upper()]
    assert len(sign) == 1 and sign[0].start_pts_s <= SIGN_S[0] + 0.5 and sign[0].end_pts_s >= SIGN_S[1] - 1.0
    assert len(scripted_events) >= 6  # the scene cuts were found: enough events for calibration to warm up

    engine = make_engine(follow_block_ms=50, scoring={"min_samples": 4})
    await engine.start()
    evac = engine.define({"name": "evacuation", "query": "an order to evacuate", "cooldown_s": 0})
    absent = engine.define({"name": "dog", "query": "a dog playing with a ball", "cooldown_s": 0})
    live = engine.subscribe()
    bank.register_stream("lobby-cam")
    for event in scripted_events:
        bank.add(event)  # the engine finds them on the bank's new-event stream
    deadline = time.monotonic() + 30
    while engine.events_judged < len(scripted_events):
        assert time.monotonic() < deadline, f"judged {engine.events_judged} of {len(scripted_events)}"
        await asyncio.sleep(0.05)
    messages = [await asyncio.wait_for(anext(live), 30) for _ in range(3)]

    (fired,) = engine.firings(evac.id)
    assert fired.event_id == sign[0].event_id and fired.channel == "text"
    assert fired.evidence.snippet.upper() == "EVACUATE NOW" and fired.evidence.calibration_samples >= 4
    assert engine.firings(absent.id) == []
    assert [m.type for m in messages] == ["new", "update", "end"]
    assert all(m.alert_id == evac.id for m in messages)
    assert messages[1].after.verdict in ("confirmed", "rejected")  # tiny random VLM: a verdict, not a truth
