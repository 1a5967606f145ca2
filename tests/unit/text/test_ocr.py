"""OCR on generated slides: text found, huge frames downscaled, each slide read once."""

from __future__ import annotations

import numpy as np
import pytest

from encoder.text.ocr import SlideTracker, normalize_text, ocr_report
from vidsight.synth.lecture import TOPICS, LectureSlide, render_slide


def _slide(index: int, topic_index: int) -> LectureSlide:
    t = TOPICS[topic_index]
    return LectureSlide(
        index, 0.0, 30.0, t.title, t.bullets, t.narration, 1.5, 20.0, (), t.text_query, t.speech_query
    )


@pytest.fixture(scope="module")
def frames():
    return {
        "tides": render_slide(_slide(0, 1), 960, 540),
        "photo": render_slide(_slide(1, 0), 960, 540),
        "blank": render_slide(_slide(2, 2), 960, 540, blank=True),
    }


def test_ocr_reads_the_title_and_every_bullet(ocr, frames):
    lines = ocr.read_lines(frames["tides"])
    read = {normalize_text(line.text) for line in lines}
    for expected in [TOPICS[1].title, *TOPICS[1].bullets]:
        assert normalize_text(expected) in read, (expected, read)
    assert all(0.5 <= line.confidence <= 1.0 and len(line.box) == 4 for line in lines)


def test_ocr_reads_formulas_exactly(ocr, frames):
    text = " ".join(line.text for line in ocr.read_lines(frames["photo"]))
    assert "C6H12O6" in text and "CO2" in text


def test_huge_frames_are_downscaled_and_boxes_come_back_in_source_pixels(ocr, frames):
    huge = np.repeat(np.repeat(frames["tides"], 4, axis=0), 4, axis=1)  # 3840 x 2160
    lines, note = ocr.read(huge)
    assert "downscaled 3840x2160 -> 1280x720" in note
    assert normalize_text(TOPICS[1].title) in {normalize_text(x.text) for x in lines}
    title = next(x for x in lines if normalize_text(x.text) == normalize_text(TOPICS[1].title))
    xs = [p[0] for p in title.box]
    assert max(xs) > 960  # in 3840-wide coordinates, not the 1280-wide copy OCR saw


def test_a_slide_without_text_gives_no_lines(ocr, frames):
    assert ocr.read_lines(frames["blank"]) == []


def test_each_slide_is_read_once_and_same_text_slides_merge(ocr, frames):
    tracker = SlideTracker(ocr, "s")
    recoloured = frames["tides"].copy()
    recoloured[-60:, :] = (0, 0, 0)  # a visual change, same text
    sequence = [frames["tides"]] * 4 + [recoloured] * 3 + [frames["photo"]] * 4 + [frames["blank"]] * 3
    slides = []
    for i, rgb in enumerate(sequence):
        noisy = np.clip(rgb.astype(np.int16) + (i % 3) - 1, 0, 255).astype(np.uint8)  # codec-like jitter
        slides += tracker.observe(noisy, float(i))
    slides += tracker.finish(float(len(sequence)))
    assert tracker.reads == 4  # tides, recoloured tides, photosynthesis, blank
    assert [(s.start_pts_s, s.end_pts_s) for s in slides] == [(0.0, 7.0), (7.0, 11.0), (11.0, 14.0)]
    assert slides[0].lines and slides[1].lines and not slides[2].lines
    report = ocr_report(slides, tracker)
    assert report.status == "found" and "2 with text, 1 without" in report.detail


def test_report_when_no_slide_has_text(ocr, frames):
    tracker = SlideTracker(ocr, "s")
    slides = tracker.observe(frames["blank"], 0.0) + tracker.finish(5.0)
    assert ocr_report(slides, tracker).status == "empty"
