"""`vidsight demo` (the README's main job) end to end in a subprocess, on the embedded defaults in a
fresh folder: every step reports, the stand-in models are named as such, nothing fails, and the
lecture's search results are real (OCR and speech run real offline models)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_every_step_and_says_which_models_are_stand_ins(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDSIGHT_")}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo", "--json", "--local"],
        cwd=tmp_path,
        env={**env, "RAY_AUTH_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    by_step = {s["step"]: s for s in steps}
    searches = [s for s in steps if s["step"] == "search hit"]
    assert {
        "models",
        "sample",
        "server",
        "alert defined",
        "ingested",
        "search hit",
        "ask",
        "alert",
        "done",
    } <= set(by_step)
    assert (
        all("random weights" in m for m in by_step["models"]["stand_ins"])
        and len(by_step["models"]["stand_ins"]) == 3
    )
    assert "VIDSIGHT_LLM__MODEL_ID=" in by_step["done"]["real_weights"]
    ingested = by_step["ingested"]
    assert ingested["state"] == "done" and ingested["events"] >= 1
    assert 0 < ingested["tokens_kept"] < ingested["tokens_in"]
    assert by_step["ask"]["streamed_pieces"] > 1 and by_step["ask"]["cited"]
    assert (tmp_path / ".vidsight" / "videos" / "demo-lecture.mp4").exists()
    by_slide_text = [s for s in searches if s["answered_by"] == "slide text"]
    by_speech = [s for s in searches if s["answered_by"] == "speech"]
    assert len(by_slide_text) == len(by_speech) == 3
    assert all(s["right_slide"] and s["channel"] in ("ocr", "fused") for s in by_slide_text), by_slide_text
    assert sum(s["right_slide"] for s in by_speech) >= 2, by_speech
