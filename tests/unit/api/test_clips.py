"""Clips: a recorded event is cut from its source at the event's times; a live event becomes its
keyframes shown over its duration."""

import io

import av
import numpy as np
import pytest
from PIL import Image

from api.clips import cut_recorded, keyframe_clip
from api.errors import NotFoundError, UnprocessableError
from vidsight.synth.video import moving_boxes_script, write_video


def frames_of(data: bytes) -> list[tuple[float, np.ndarray]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return [
            (float(f.pts * stream.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(stream)
        ]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "v.mp4"
    return write_video(
        path, moving_boxes_script(160, 120, fps=10.0, duration_s=6.0, cut_at_s=[3.0]), gop_frames=30
    )


def test_recorded_clip_holds_exactly_the_frames_of_the_range(video):
    frames = frames_of(cut_recorded(str(video.path), 1.25, 3.0, max_s=60))
    expected = [t for t in video.pts_s if 1.25 <= t < 3.0]
    assert len(frames) == len(expected) == 17
    assert frames[0][0] == pytest.approx(
        expected[0] - 1.25, abs=1e-3
    )  # starts at the event, not the keyframe
    assert frames[-1][0] == pytest.approx(expected[-1] - 1.25, abs=1e-3)
    assert frames[0][1].shape == (120, 160, 3)


def test_recorded_clip_is_capped_at_max_s(video):
    assert len(frames_of(cut_recorded(str(video.path), 0.0, 6.0, max_s=1.0))) == 10


def test_recorded_clip_errors_name_the_problem(video, tmp_path):
    with pytest.raises(UnprocessableError, match="no frames"):
        cut_recorded(str(video.path), 50.0, 60.0, max_s=60)
    with pytest.raises(NotFoundError, match="cannot read"):
        cut_recorded(str(tmp_path / "gone.mp4"), 0.0, 1.0, max_s=60)


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (65, 49)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_keyframe_clip_shows_each_keyframe_for_its_share_of_the_event():
    frames = frames_of(keyframe_clip([jpeg((250, 0, 0)), jpeg((0, 0, 250))], duration_s=8.0))
    times = [t for t, _ in frames]
    assert times[:2] == pytest.approx([0.0, 4.0], abs=1e-3)
    assert frames[0][1].shape == (48, 64, 3)  # odd sides cropped for yuv420p
    red, blue = frames[0][1].mean(axis=(0, 1)), frames[1][1].mean(axis=(0, 1))
    assert red[0] > 200 > red[2] and blue[2] > 200 > blue[0]


def test_keyframe_clip_needs_keyframes():
    with pytest.raises(NotFoundError, match="no keyframes"):
        keyframe_clip([], 3.0)
