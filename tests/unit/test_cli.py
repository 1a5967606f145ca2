"""The console script end to end, in a subprocess, as a user runs it."""

import json
import subprocess
import sys

from vidsight.synth.video import moving_boxes_script, write_video


def vidsight(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_ingest_prints_events_and_a_summary(tmp_path):
    video = write_video(tmp_path / "v.mp4", moving_boxes_script(duration_s=6.0, cut_at_s=[3.0])).path
    result = vidsight("ingest", str(video), "--fps", "2", "--local", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events, summary = lines[:-1], lines[-1]["summary"]
    assert summary["frames"] == 12
    assert summary["events"] == len(events) >= 1
    assert events[0]["start_s"] == 0.0 and events[-1]["end_s"] == 5.5
    assert all(0 < e["tokens_kept"] <= e["tokens_in"] for e in events)
    assert sum(e["frames"] for e in events) == 12


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path):
    result = vidsight("ingest", str(tmp_path / "missing.mp4"), cwd=tmp_path)
    assert result.returncode == 1
    assert "no such file" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    result = vidsight("ingest", "ftp://example.com/a.mp4", cwd=tmp_path)
    assert result.returncode == 1 and "unsupported scheme 'ftp'" in result.stdout + result.stderr


def test_bad_settings_name_the_variable(tmp_path):
    import os

    env = {**os.environ, "VIDSIGHT_INGEST__SAMPLE_FPS": "zero"}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "ingest", "x.mp4"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert "sample_fps" in result.stderr
