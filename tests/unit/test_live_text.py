"""Live streams get the on-screen text of each event (real OCR on generated frames)."""

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from compressor.records import Event, EventStats
from encoder.text import SlideOCR, TextSettings
from ingest import Frame
from vidsight.live_text import LiveText


@pytest.fixture(scope="module")
def ocr():
    return SlideOCR(TextSettings().ocr)


def frame(index: int, text: str | None) -> Frame:
    image = Image.new("RGB", (320, 240), (40, 90, 60))
    if text:
        draw = ImageDraw.Draw(image)
        draw.rectangle((20, 80, 300, 160), fill=(255, 255, 255))
        try:
            font = ImageFont.truetype("DejaVuSans-Bold.ttf", 28)
        except OSError:
            font = ImageFont.load_default(28)
        draw.text((35, 105), text, font=font, fill=(200, 0, 0))
    return Frame("gate", index, index, Fraction(1), np.asarray(image), wall_time_s=1000.0 + index)


def event(start_s: float, end_s: float) -> Event:
    return Event(
        event_id=f"gate:{int(start_s)}",
        stream_id="gate",
        start_pts_s=start_s,
        end_pts_s=end_s,
        start_wall_s=None,
        end_wall_s=None,
        embedding=np.ones(4, np.float32) / 2,
        tokens=np.zeros((1, 4), np.float16),
        positions=np.zeros((1, 3), np.int32),
        counts=np.ones(1, np.int32),
        grid_t0=0,
        grid_pts_s=np.zeros(1),
        grid_hw=(1, 1),
        stats=EventStats(frames=1, grids=1, tokens_in=1, tokens_kept=1),
    )


def test_each_event_gets_the_text_shown_during_it_and_no_other(ocr):
    live = LiveText(ocr, "gate")
    live.observe([frame(i, None) for i in range(0, 5)])
    live.observe([frame(i, "EVACUATE NOW") for i in range(5, 9)])
    live.observe([frame(i, None) for i in range(9, 14)])
    before, during, after = event(0, 4), event(5, 8), event(10, 13)
    assert live.attach(before).text == ""
    assert "EVACUATE" in live.attach(during).text.upper()
    assert live.attach(after).text == ""
    spanning = live.attach(event(3, 11))
    assert "EVACUATE" in spanning.text.upper()
