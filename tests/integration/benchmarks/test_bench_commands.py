"""The benchmarks run end to end in their small modes and print the summary fields RESULTS.md and
the issues name (a benchmark that rots silently would leave RESULTS.md unreproducible)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def _bench(*argv: str, timeout_s: float = 240) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDSIGHT_")}
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "bench", *argv, "--json"],
        cwd=ROOT,
        env={**env, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_decode_bench_finds_parallel_equal_to_sequential():
    summary = _bench("decode", "--quick", "--seconds", "12", "--height", "360", "--skip-naive")
    assert summary["bench"] == "decode" and summary["identical"] is True
    assert summary["frames"] == 12 and summary["seq_s"] > 0 and summary["parallel_s"] > 0
    assert summary["speedup_vs_seq"] == pytest.approx(summary["seq_s"] / summary["parallel_s"], rel=0.01)


def test_compress_bench_reports_tokens_quality_and_the_cut():
    summary = _bench("compress", "--quick")
    assert summary["bench"] == "compress" and 0 < summary["kept_ratio"] < 1
    assert summary["tokens_kept"] == pytest.approx(summary["kept_ratio"] * summary["tokens_in"], abs=1)
    assert summary["psnr_db"] > 20 and summary["events"] >= 2 and summary["cut_error_frames"] <= 2


def test_memory_bench_measures_search_recall_and_recovery(tmp_path):
    summary = _bench(
        "memory", "--events", "4000", "--queries", "20", "--clusters", "40", "--data-dir", str(tmp_path)
    )
    assert summary["bench"] == "memory" and summary["events"] == 4000
    assert summary["recall_at_10"] >= 0.9 and summary["filtered_recall_at_10"] >= 0.9
    assert summary["search_p95_ms"] > 0 and summary["recover_s"] > 0 and summary["bytes_per_event"] > 0


def test_llm_bench_compares_the_64_frame_baseline_with_selection_and_pruning():
    summary = _bench("llm", "--quick")
    fields = {"baseline_tokens", "ours_tokens", "baseline_ttft_s", "ours_ttft_s", "ttft_speedup", "kv_ratio"}
    assert fields | {"followup_ttft_s", "ours_decode_tok_s"} <= set(summary)
    assert summary["ours_tokens"] < summary["baseline_tokens"] and 0 < summary["kv_ratio"] < 1
