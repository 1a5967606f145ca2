"""`vidsight demo`: the whole system, one command, on the embedded defaults.

It starts the real server in this process (uvicorn, embedded Redis, local Ray unless --local),
makes an admin key, defines a standing alert, ingests a generated sample video through the REST
API, then searches it, asks a question over the /v1/live WebSocket (the answer streams in),
backtests the alert and reports what every step did. Models come from settings: by default the
vision tower, SigLIP and the LLM are tiny random-weight stand-ins, and the demo says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

from vidsight.settings import Settings

SAMPLE = "demo-sample.mp4"
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
        asyncio.run(_tour(out, server.url, token, sample.name))
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


def _sample(out: Demo, settings: Settings) -> Path:
    from vidsight.synth.video import moving_boxes_script, write_video

    path = Path(settings.data_dir) / "videos" / SAMPLE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        script = moving_boxes_script(width=640, height=360, fps=30.0, duration_s=60.0, cut_at_s=[20.0, 40.0])
        write_video(path, script, gop_frames=60)
    out.say(
        "sample",
        path=str(path),
        note="generated: 60 s, 640x360, two moving boxes, scene cuts at 20 s and 40 s",
    )
    return path


async def _tour(out: Demo, url: str, token: str, sample: str) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as c:
        alert = (
            await c.post("/v1/alerts", json={"id": "demo-red-box", "query": "a red box in the corner"})
        ).json()
        out.say(
            "alert defined",
            id=alert.get("id"),
            query=alert.get("query"),
            note="the engine judges every new event against it from now on",
        )
        job = (await c.post("/v1/videos", json={"path": sample, "stream_id": "demo"})).json()
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
        search = (
            await c.post("/v1/search", json={"query": "two boxes crossing", "streams": ["demo"], "k": 3})
        ).json()
        for r in search.get("results", []):
            out.say(
                "search hit",
                event=r["event_id"],
                start_s=r["start_s"],
                end_s=r["end_s"],
                score=r["score"],
                thumbnail=url + (r["thumbnail_url"] or ""),
            )
        await _ask(out, url, token, "What happened in the video?")
        backtest = (await c.post("/v1/alerts/demo-red-box/backtest", json={"streams": ["demo"]})).json()
        firings = (await c.get("/v1/alerts/demo-red-box/firings")).json()
        out.say(
            "alert",
            live_firings=len(firings.get("firings", [])),
            backtest_firings=len(backtest.get("firings", [])),
            note="random SigLIP scores are noise: the calibrated thresholds keep them from firing, as they "
            "should; text evidence (OCR/speech on real weights) fires on real words",
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
