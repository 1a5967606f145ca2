"""`vidsight demo`: the whole system, one command, on the embedded defaults.

It starts the real server in this process (uvicorn, embedded Redis, local Ray unless --local),
makes an admin key, generates a short lecture (three slides on distinct topics, narrated by
Festival, muxed into an MP4), defines a standing alert on one slide's subject, ingests the lecture
through the REST API (vision, OCR and speech), then searches it by words that are only on a slide
and by words that are only spoken (checked against the lecture's own script), asks a question over
the /v1/live WebSocket (the answer streams in), backtests the alert and reports what every step did.
Models come from settings: by default the vision tower, SigLIP and the LLM are tiny random-weight
stand-ins, and the demo says so; OCR, speech and text embeddings are real offline models, so the
search results are real.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidsight.settings import Settings

SAMPLE = "demo-lecture.mp4"
SLIDES = 3
REAL_WEIGHTS = (
    "VIDSIGHT_ENCODER__VLM_MODEL=Qwen/Qwen2.5-VL-7B-Instruct "
    "VIDSIGHT_ENCODER__RETRIEVAL_MODEL=google/siglip-so400m-patch14-384 "
    "VIDSIGHT_LLM__MODEL_ID=Qwen/Qwen2.5-VL-7B-Instruct vidsight demo"
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="start everything, ingest a sample video, search, ask, alert")
    p.add_argument("--json", action="store_true", help="one JSON object per step")
    p.add_argument("--local", action="store_true", help="run the pipeline in this process, without Ray")
    p.add_argument("--serve", action="store_true", help="keep the server running afterwards (Ctrl+C stops)")
    p.add_argument("--port", type=int, default=None, help="port of the demo server (default: a free one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vidsight.synth.servers import free_port

    out = Demo(args.json)
    started = time.perf_counter()
    port = args.port or (settings.api.port if args.serve else free_port())
    api = settings.api.model_copy(
        update={"port": port, "host": "127.0.0.1", **({"pipeline": "local"} if args.local else {})}
    )
    settings = settings.model_copy(update={"api": api})
    _models(out, settings)
    sample = _sample(out, settings)
    server = _Server(settings)
    out.say(
        "server",
        status="starting",
        pipeline=api.pipeline,
        data_dir=str(settings.data_dir),
        note="embedded Redis" if settings.redis_url is None else f"Redis {settings.redis_url}",
    )
    try:
        server.start()
        out.say("server", status="ready", url=server.url, seconds=round(time.perf_counter() - started, 1))
        token = server.admin_key()
        asyncio.run(_tour(out, server.url, token, sample))
        if args.serve:
            out.say(
                "serve",
                url=server.url + "/",
                api_key=token,
                note="open the page, paste the key; Ctrl+C stops",
            )
            server.wait()
        else:
            server.revoke(token)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    out.say("done", seconds=round(time.perf_counter() - started, 1), real_weights=REAL_WEIGHTS)
    return 0


def _models(out: Demo, settings: Settings) -> None:
    from api.service import model_names

    names = model_names(settings)
    stand_ins = [f"{role}: {name}" for role, name in names.items() if "random weights" in name]
    real = [f"{role}: {name}" for role, name in names.items() if "random weights" not in name]
    real += [
        "OCR: rapidocr (PP-OCR)",
        "speech: pocketsphinx en-US + Silero VAD",
        "text embeddings: all-MiniLM-L6-v2",
    ]
    out.say(
        "models",
        stand_ins=stand_ins,
        real=real,
        note="tiny random-weight stand-ins run the real code paths; their search scores, answers and "
        "alert verdicts are NOT meaningful. Real weights: " + REAL_WEIGHTS,
    )


def _sample(out: Demo, settings: Settings) -> Any:
    """The demo lecture (vidsight.synth.lecture.Lecture), made once per data dir."""
    from vidsight.synth.lecture import Lecture, LectureSynthError, generate_lecture

    path = Path(settings.data_dir) / "videos" / SAMPLE
    truth = path.with_suffix(".json")
    if path.exists() and truth.exists():
        lecture = Lecture.from_json(truth.read_text())
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp-" + path.name)
        try:
            lecture = generate_lecture(tmp, SLIDES, seed=7, min_slide_s=20.0, max_slide_s=28.0)
        except LectureSynthError as exc:
            raise SystemExit(f"vidsight demo: cannot make the sample lecture: {exc}") from exc
        tmp.replace(path)
        lecture = replace(lecture, path=path)
        truth.write_text(lecture.to_json())
    out.say(
        "sample",
        path=str(path),
        seconds=round(lecture.duration_s, 1),
        slides=[f"{s.start_s:.0f}-{s.end_s:.0f} s: {s.title}" for s in lecture.slides],
        note="generated: rendered slides and Festival narration that speaks of each topic in other words",
    )
    return lecture


async def _tour(out: Demo, url: str, token: str, lecture: Any) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    watched = lecture.slides[-1]
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as c:
        alert = (await c.post("/v1/alerts", json={"id": "demo-topic", "query": watched.text_query})).json()
        out.say(
            "alert defined",
            id=alert.get("id"),
            query=alert.get("query"),
            note="the engine judges every new event against it from now on (visual and text evidence)",
        )
        job = (await c.post("/v1/videos", json={"path": lecture.path.name, "stream_id": "demo"})).json()
        while job.get("state") in ("queued", "running"):
            await asyncio.sleep(0.5)
            job = (await c.get(f"/v1/videos/{job['job_id']}")).json()
        out.say(
            "ingested",
            state=job.get("state"),
            frames=job.get("frames"),
            events=job.get("events"),
            tokens_in=job.get("tokens_in"),
            tokens_kept=job.get("tokens_kept"),
            seconds=_span(job),
            error=job.get("error"),
        )
        for slide in lecture.slides:
            for kind, query in (("slide text", slide.text_query), ("speech", slide.speech_query)):
                body = {"query": query, "streams": ["demo"], "k": 3}
                results = (await c.post("/v1/search", json=body)).json().get("results", [])
                top = results[0] if results else None
                out.say(
                    "search hit",
                    query=query,
                    answered_by=kind,
                    expected=f"{slide.start_s:.0f}-{slide.end_s:.0f} s ({slide.title})",
                    found=f"{top['start_s']:.0f}-{top['end_s']:.0f} s" if top else None,
                    right_slide=top is not None and _found_slide(top, lecture) == slide.index,
                    channel=top["channel"] if top else None,
                    snippet=top["snippet"] if top else None,
                    thumbnail=url + (top["thumbnail_url"] or "") if top else None,
                )
        await _ask(out, url, token, "What is this lecture about?")
        backtest = (await c.post("/v1/alerts/demo-topic/backtest", json={"streams": ["demo"]})).json()
        firings = (await c.get("/v1/alerts/demo-topic/firings")).json()
        out.say(
            "alert",
            live_firings=len(firings.get("firings", [])),
            backtest_firings=len(backtest.get("firings", [])),
            watched=f"{watched.start_s:.0f}-{watched.end_s:.0f} s ({watched.title})",
            fired_at=[f"{f['start_pts_s']:.0f}-{f['end_pts_s']:.0f} s" for f in backtest.get("firings", [])],
            note="text evidence (the slide's words, read by real OCR) fires; random SigLIP scores are "
            "noise that the calibrated thresholds keep from firing, as they should",
        )
        metrics = (await c.get("/metrics")).text
        latency = [
            line for line in metrics.splitlines() if line.startswith("vidsight_query_latency_seconds_sum")
        ]
        out.say("metrics", lines=latency)


async def _ask(out: Demo, url: str, token: str, question: str) -> None:
    import websockets

    ws_url = url.replace("http://", "ws://") + "/v1/live"
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(
            json.dumps({"type": "ask", "id": "demo", "question": question, "scope": {"streams": ["demo"]}})
        )
        pieces: list[str] = []
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if message.get("id") != "demo":
                continue
            if message["type"] == "token":
                pieces.append(message["text"])
            else:
                break
    if message["type"] == "error":
        out.say("ask", question=question, error=message["message"])
        return
    out.say(
        "ask",
        question=question,
        streamed_pieces=len(pieces),
        answer=message["answer"][:200],
        ttft_ms=message["ttft_ms"],
        cited=[c["event_id"] for c in message["cited"]],
        note="streamed over /v1/live; random LLM weights give random tokens",
    )


def _found_slide(hit: dict[str, Any], lecture: Any) -> int | None:
    slide = lecture.slide_over(hit["start_s"], hit["end_s"])
    return None if slide is None else slide.index


def _span(job: dict[str, Any]) -> float | None:
    if job.get("started_s") and job.get("finished_s"):
        return round(job["finished_s"] - job["started_s"], 2)
    return None


class _Server:
    """uvicorn with the app in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from api.app import create_app

        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host=settings.api.host, port=settings.api.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.url = f"http://{settings.api.host}:{settings.api.port}"
        self.thread = threading.Thread(target=self.server.run, name="demo-server", daemon=True)

    def start(self, timeout_s: float = 600.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start; see the log above")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within {timeout_s} s")
            time.sleep(0.2)

    def admin_key(self) -> str:
        token, _ = self.app.state.service.keys.create(["admin"], "vidsight demo")
        return str(token)

    def revoke(self, token: str) -> None:
        self.app.state.service.keys.revoke(token.split("_")[1])

    def wait(self) -> None:
        while self.thread.is_alive():
            self.thread.join(1.0)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(120)


class Demo:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def say(self, step: str, **fields: Any) -> None:
        if self.as_json:
            print(json.dumps({"step": step, **fields}, default=str), flush=True)
        else:
            print(f"[{step}] " + "  ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
