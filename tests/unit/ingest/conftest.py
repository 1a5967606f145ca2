import pytest

from vidsight.synth.video import moving_boxes_script, tone, truncate, write_video


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Small test files, made once: CFR, VFR, non-zero start, audio track, truncated tail."""
    root = tmp_path_factory.mktemp("media")
    script = moving_boxes_script(width=320, height=240, fps=30.0, duration_s=8.0, cut_at_s=[4.0])
    files = {
        "cfr": write_video(root / "cfr.mp4", script, gop_frames=30).path,
        "vfr": write_video(root / "vfr.mkv", script, gop_frames=30, is_vfr=True).path,
        "start": write_video(root / "start.mp4", script, gop_frames=30, start_s=12.5).path,
        "audio": write_video(root / "audio.mp4", script, gop_frames=30, audio=tone(8.0)).path,
    }
    files["truncated"] = truncate(files["vfr"], root / "truncated.mkv", 0.55)
    not_video = root / "notes.txt"
    not_video.write_text("hello, not a video\n" * 50)
    files["not_video"] = not_video
    return files
