"""Lecture search: a generated lecture ingested through OCR, VAD, ASR and the text index; top-1 by channel.

One query per slide is answered only by its slide text (OCR), one only by its narration (speech).
A query is answered at rank r when the r-th result's time range lies mostly over the right slide.
Ingest = decode + OCR on slide changes + audio demux + VAD + ASR + chunking + embedding + indexing
(models are loaded and ASR workers started before the clock, as in a running service).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import machine, percentile, ratio, stopwatch
from encoder.text import TextExtractor, TextSettings, audio_activity, split_budget, uniform_windows
from memory.hybrid import hybrid_search
from memory.text_index import TextIndex, tokenize
from vidsight.synth.lecture import Lecture, LectureSlide, cached_lecture

_STREAM = "lecture"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slides", type=int, default=None, help="slides in the lecture (default 24, quick 12)"
    )
    parser.add_argument("--seed", type=int, default=0, help="picks topics and slide lengths")
    parser.add_argument("--cache-dir", default=None, help="where generated lectures are kept (default: tmp)")
    parser.add_argument(
        "--sample-fps", type=float, default=2.0, help="frames per second checked for slide changes"
    )
    parser.add_argument("--window-s", type=float, default=10.0, help="window length for audio-guided budgets")
    parser.add_argument(
        "--budget-tokens", type=int, default=4096, help="visual token budget split over windows"
    )


def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    settings = _text_settings(args)
    slides = args.slides or (12 if args.quick else 24)
    cache = Path(args.cache_dir or Path(tempfile.gettempdir()) / "vidsight-lectures")
    with stopwatch(sync=False) as gen:
        lecture = cached_lecture(cache, slides, seed=args.seed)
    yield {
        "stage": "lecture",
        "path": str(lecture.path),
        "slides": slides,
        "video_s": lecture.duration_s,
        "generate_s": round(gen.seconds, 2),
    }
    with TextExtractor(settings) as extractor, tempfile.TemporaryDirectory(prefix="vidsight-text-") as tmp:
        with stopwatch(sync=False) as load:
            extractor.warmup()
        yield {"stage": "models", "model_load_s": round(load.seconds, 2)}
        cpu_before = _cpu_seconds()
        with stopwatch(sync=False) as ingest:
            extraction = extractor.extract_file(lecture.path, stream_id=_STREAM, sample_fps=args.sample_fps)
            index = TextIndex(tmp, extraction.vectors.shape[1])
            index.add(extraction.chunks, extraction.vectors)
        ingest_cpu_s = _cpu_seconds() - cpu_before
        yield {
            "stage": "ingest",
            "ingest_s": round(ingest.seconds, 2),
            "ingest_cpu_s": round(ingest_cpu_s, 2),
            **extraction.timings_s,
            "chunks": len(extraction.chunks),
            "reports": [str(r) for r in extraction.reports],
        }
        quality = _channel_quality(lecture, extraction)
        yield {"stage": "channels", **quality}
        search = _search(lecture, index, extractor, settings)
        yield {"stage": "search", **{k: v for k, v in search.items() if k != "latencies_ms"}}
    budget = _budget_effect(lecture, extraction.speech_spans_s, settings, args.window_s, args.budget_tokens)
    yield {"stage": "budget", **budget}
    yield {
        "bench": "lecture",
        "slides": slides,
        "video_s": round(lecture.duration_s, 1),
        "ingest_s": round(ingest.seconds, 2),
        "realtime_factor": ratio(lecture.duration_s, ingest.seconds, 1),
        "ingest_cpu_s": round(ingest_cpu_s, 2),
        # What the same work would take with every core to itself (other load excluded): an estimate.
        "realtime_factor_if_cores_free": ratio(lecture.duration_s, ingest_cpu_s / (os.cpu_count() or 1), 1),
        "ocr_top1": search["ocr_top1"],
        "speech_top1": search["speech_top1"],
        "mrr": search["mrr"],
        "search_p95_ms": round(percentile(search["latencies_ms"], 95), 2),
        "search_p50_ms": round(percentile(search["latencies_ms"], 50), 2),
        "ocr_top1_channel_filtered": search["ocr_top1_filtered"],
        "speech_top1_channel_filtered": search["speech_top1_filtered"],
        **quality,
        **budget,
        "model_load_s": round(load.seconds, 2),
        "asr_backend": settings.asr.backend,
        "asr_workers": settings.asr.workers or os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its children: the ASR workers."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _text_settings(args: argparse.Namespace) -> TextSettings:
    section = getattr(getattr(args, "settings", None), "text", None)
    return section if isinstance(section, TextSettings) else TextSettings()


def _search(
    lecture: Lecture, index: TextIndex, extractor: TextExtractor, settings: TextSettings
) -> dict[str, Any]:
    ranks: dict[str, list[int | None]] = {"ocr": [], "speech": [], "ocr_filtered": [], "speech_filtered": []}
    latencies_ms: list[float] = []
    for slide in lecture.slides:
        for query, channel in ((slide.text_query, "ocr"), (slide.speech_query, "speech")):
            started = time.perf_counter()
            vector = extractor.embedder.encode([query])[0]
            hits = hybrid_search(index, query, vector, settings.search, k=10)
            latencies_ms.append((time.perf_counter() - started) * 1000)
            ranks[channel].append(_rank(lecture, hits, slide))
            narrowed = hybrid_search(index, query, vector, settings.search, k=10, channels=[channel])
            ranks[f"{channel}_filtered"].append(_rank(lecture, narrowed, slide))
    every = ranks["ocr"] + ranks["speech"]
    return {
        "ocr_top1": _top1(ranks["ocr"]),
        "speech_top1": _top1(ranks["speech"]),
        "ocr_top1_filtered": _top1(ranks["ocr_filtered"]),
        "speech_top1_filtered": _top1(ranks["speech_filtered"]),
        "mrr": round(sum(1 / r for r in every if r) / len(every), 4),
        "queries": len(every),
        "latencies_ms": latencies_ms,
    }


def _rank(lecture: Lecture, hits: list[Any], target: LectureSlide) -> int | None:
    """1-based rank of the first hit whose range lies mostly over the target slide."""
    for rank, hit in enumerate(hits, start=1):
        slide = lecture.slide_over(hit.start_pts_s, hit.end_pts_s)
        if slide is not None and slide.index == target.index:
            return rank
    return None


def _top1(ranks: list[int | None]) -> float:
    return round(sum(r == 1 for r in ranks) / len(ranks), 4) if ranks else 0.0


def _channel_quality(lecture: Lecture, extraction: Any) -> dict[str, Any]:
    """How much of the ground truth each channel recovered (word recall, not search quality)."""
    said = [w for s in lecture.slides for w in tokenize(s.narration)]
    heard = set(tokenize(extraction.transcript.text))
    shown = [w for s in lecture.slides for w in tokenize(s.slide_text)]
    read = set(tokenize(" ".join(s.text for s in extraction.slides)))
    timing = _word_timing_error(lecture, extraction)
    return {
        "slides_detected": len(extraction.slides),
        "asr_word_recall": round(sum(w in heard for w in said) / max(1, len(said)), 4),
        "ocr_word_recall": round(sum(w in read for w in shown) / max(1, len(shown)), 4),
        "asr_word_start_error_median_s": timing,
    }


def _word_timing_error(lecture: Lecture, extraction: Any) -> float | None:
    """Median |start error| of recognised words matched to the nearest same spoken word within 2 s."""
    truth: dict[str, list[float]] = {}
    for slide in lecture.slides:
        for w in slide.words:
            truth.setdefault(w.text.lower(), []).append(w.start_s)
    errors = []
    for w in extraction.transcript.words:
        starts = truth.get(w.text.lower())
        if starts:
            gap = min(abs(s - w.start_s) for s in starts)
            if gap < 2.0:
                errors.append(gap)
    return round(percentile(errors, 50), 3) if errors else None


def _budget_effect(
    lecture: Lecture, spans_s: Any, settings: TextSettings, window_s: float, budget_tokens: int
) -> dict[str, Any]:
    """Share of a visual token budget landing in narrated windows: audio-guided vs uniform split."""
    from encoder.text.records import SpeechSpan
    from ingest.audio import read_audio

    windows = uniform_windows(0.0, lecture.duration_s, window_s)
    spans = [SpeechSpan(a, b) for a, b in spans_s]
    activity = audio_activity(windows, spans, settings.budget, read_audio(lecture.path))
    guided = split_budget(budget_tokens, [a.weight for a in activity])
    uniform = split_budget(budget_tokens, [1.0] * len(windows))
    narrated = [_narrated_share(lecture, a, b) >= 0.5 for a, b in windows]
    return {
        "budget_windows": len(windows),
        "narrated_windows": sum(narrated),
        "budget_share_narrated_uniform": round(
            sum(u for u, n in zip(uniform, narrated, strict=True) if n) / budget_tokens, 4
        ),
        "budget_share_narrated_audio": round(
            sum(g for g, n in zip(guided, narrated, strict=True) if n) / budget_tokens, 4
        ),
    }


def _narrated_share(lecture: Lecture, start_s: float, end_s: float) -> float:
    covered = sum(
        max(0.0, min(end_s, s.narration_end_s) - max(start_s, s.narration_start_s)) for s in lecture.slides
    )
    return covered / max(1e-9, end_s - start_s)
