"""Generated lectures (Festival narration) and one text extractor, shared by the integration tests."""

from __future__ import annotations

import numpy as np
import pytest

from encoder.text import TextExtractor, TextSettings
from vidsight.synth.lecture import TOPICS, Topic, cached_lecture, festival_available
from vidsight.synth.video import SceneScript, write_video

# Three topics whose narrations are short, so a lecture is about a minute long.
LECTURE_TOPICS = [TOPICS[1], TOPICS[3], TOPICS[7]]
SPANISH = Topic(
    "Historia de Roma",
    ("Fundada en el siglo VIII a. C.",),
    "La ciudad fue fundada hace muchos siglos y sus ejércitos conquistaron todo el mar Mediterráneo.",
    "Roma",
    "ciudad",
)


@pytest.fixture(scope="session")
def lectures(tmp_path_factory):
    if not festival_available():
        pytest.skip("festival with voice cmu_us_slt_arctic_hts is not installed")
    root = tmp_path_factory.mktemp("lectures")
    short = {"min_slide_s": 18.0, "max_slide_s": 22.0, "fps": 2.0}
    silent = root / "silent_audio.mp4"
    write_video(silent, SceneScript(320, 240, 2.0, 6.0), audio=np.zeros(16_000 * 6, np.float32))
    return {
        "main": cached_lecture(root, 3, topics=LECTURE_TOPICS, **short),
        "no_audio": cached_lecture(root, 2, topics=LECTURE_TOPICS, narrate=False, **short),
        "no_text": cached_lecture(root, 2, topics=LECTURE_TOPICS, blank_slides=(0, 1), **short),
        "spanish": cached_lecture(root, 1, topics=[SPANISH], **short),
        "silent_audio": silent,
    }


@pytest.fixture(scope="session")
def extractor():
    """Default settings: two ASR worker processes next to this one."""
    with TextExtractor(TextSettings()) as ex:
        ex.warmup()
        yield ex


@pytest.fixture(scope="session")
def main_extraction(lectures, extractor):
    return extractor.extract_file(lectures["main"].path, stream_id="lecture")
