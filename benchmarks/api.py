"""C concurrent /v1/live WebSocket clients each asking Q questions (tiny random-weight models, CPU)
while a live RTSP stream ingests into the same server.

The server is `vidsight serve` in its own process (Ray pipeline, embedded Redis, a fresh data dir);
the clients run here on one asyncio loop. Per question: first-token latency (ask sent -> first
`token` message) and answer time (-> `answer_done`). Errors: `error` replies, timeouts, dropped
connections. Ingest lag: the live stream's processing lag (real time minus the capture time of the
last frame stored), sampled from /v1/streams while the clients ask; the summary gives its maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import machine, percentile

_STREAM = "bench-cam"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients (default 50, quick 10)")
    parser.add_argument(
        "--questions", type=int, default=None, help="questions per client (default 5, quick 2)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=16, help="tokens per answer")
    parser.add_argument(
        "--stream-fps", type=float, default=2.0, help="frames kept per second of the live stream"
    )
    parser.add_argument(
        "--local", action="store_true", help="server pipeline in its own process, without Ray"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one answer may take")


def run(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from vidsight.synth.servers import RtspServer, free_port, rtsp_server_available

    clients = args.clients or (10 if args.quick else 50)
    questions = args.questions or (2 if args.quick else 5)
    if not rtsp_server_available():
        raise SystemExit("bench api needs GStreamer's RTSP server (gst-rtsp-server) for the live stream")
    with (
        tempfile.TemporaryDirectory(prefix="vidsight-bench-api-") as tmp,
        RtspServer(width=640, height=360, fps=30) as rtsp,
    ):
        server = _ServeProcess(Path(tmp), free_port(), args.local)
        try:
            started = time.perf_counter()
            server.start()
            yield {
                "stage": "server",
                "seconds": round(time.perf_counter() - started, 1),
                "pipeline": server.pipeline,
            }
            yield _ingest_sample(server, Path(tmp))
            yield _add_stream(server, rtsp.url(), args.stream_fps)
            result = asyncio.run(_load(server, clients, questions, args.max_new_tokens, args.timeout))
        finally:
            server.stop()
    first = result["first_token_s"]
    yield {
        "stage": "lag",
        "samples": len(result["lags"]),
        "lag_s": [round(x, 2) for x in result["lags"][-20:]],
    }
    yield {
        "bench": "api",
        "clients": clients,
        "questions": clients * questions,
        "errors": result["errors"],
        "p50_ms": round(percentile(first, 50) * 1000, 1) if first else None,
        "p95_ms": round(percentile(first, 95) * 1000, 1) if first else None,
        "ingest_lag_s": round(max(result["lags"]), 3) if result["lags"] else None,
        "answer_p50_ms": round(percentile(result["answer_s"], 50) * 1000, 1) if result["answer_s"] else None,
        "answers_per_s": round(len(result["answer_s"]) / result["seconds"], 2) if result["seconds"] else None,
        "seconds": round(result["seconds"], 1),
        "max_new_tokens": args.max_new_tokens,
        "stream_frames": result["stream"].get("frames"),
        "stream_events": result["stream"].get("events"),
        "stream_dropped": result["stream"].get("dropped"),
        "pipeline": server.pipeline,
        "models": "tiny random-weight Qwen2.5-VL + SigLIP (CPU)",
        "machine": machine(),
    }


class _ServeProcess:
    """`vidsight serve` on a fresh data dir with its embedded Redis, and an admin key."""

    def __init__(self, root: Path, port: int, local: bool) -> None:
        self.pipeline = "local" if local else "ray"
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "VIDSIGHT_DATA_DIR": str(root / "data"),
            "VIDSIGHT_API__PORT": str(port),
            "VIDSIGHT_API__PIPELINE": self.pipeline,
            "VIDSIGHT_API__RATE_PER_S": "10000",  # the load is the point here, not the limiter
            "VIDSIGHT_API__RATE_BURST": "10000",
            "VIDSIGHT_API__ASK_TIMEOUT_S": "600",
            "VIDSIGHT_COMPRESSOR__MAX_EVENT_GRIDS": "8",  # live events close every 16 frames
            "RAY_AUTH_MODE": "disabled",
        }
        self.env.pop("VIDSIGHT_REDIS_URL", None)
        self.log = open(root / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""

    def start(self, timeout_s: float = 300.0) -> None:
        import httpx

        key = subprocess.run(
            [sys.executable, "-m", "api.cli", "keys", "create", "--scope", "admin", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        self.token = json.loads(key.stdout)["token"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--log-level", "warning"],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vidsight serve exited; log: {self.log.name}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"vidsight serve did not come up in {timeout_s} s")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def _ingest_sample(server: _ServeProcess, root: Path) -> dict[str, Any]:
    """A recorded video first, so that questions retrieve events and the LLM reads visual tokens."""
    import httpx

    from vidsight.synth.video import moving_boxes_script, write_video

    videos = root / "data" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    write_video(videos / "sample.mp4", moving_boxes_script(640, 360, 30, 60, [20.0, 40.0]), gop_frames=60)
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as c:
        job = c.post("/v1/videos", json={"path": "sample.mp4", "stream_id": "sample"}).json()
        while job.get("state") in ("queued", "running"):
            time.sleep(0.5)
            job = c.get(f"/v1/videos/{job['job_id']}").json()
    if job.get("state") != "done":
        raise RuntimeError(f"sample ingest failed: {job}")
    return {"stage": "sample", **{k: job[k] for k in ("frames", "events", "tokens_in", "tokens_kept")}}


def _add_stream(server: _ServeProcess, url: str, fps: float) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as c:
        r = c.post("/v1/streams", json={"url": url, "stream_id": _STREAM, "fps": fps})
        r.raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = c.get(f"/v1/streams/{_STREAM}").json()
            if health.get("frames", 0) >= 4:
                return {
                    "stage": "stream",
                    **{k: health.get(k) for k in ("state", "fps", "frames", "processing_lag_s")},
                }
            time.sleep(0.5)
    raise RuntimeError("the live stream produced no frames within 60 s")


async def _load(
    server: _ServeProcess, clients: int, questions: int, tokens: int, timeout_s: float
) -> dict[str, Any]:
    import httpx

    first_token_s: list[float] = []
    answer_s: list[float] = []
    errors = 0
    lags: list[float] = []
    ws_url = server.url.replace("http://", "ws://") + "/v1/live"

    async def client(i: int) -> None:
        nonlocal errors
        import websockets

        finished = 0
        try:
            async with websockets.connect(ws_url, max_size=None, additional_headers=server.headers) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": []}))
                for q in range(questions):
                    ask = {
                        "type": "ask",
                        "id": f"{i}-{q}",
                        "question": f"What happened? ({i}, {q})",
                        "max_new_tokens": tokens,
                    }
                    sent = time.perf_counter()
                    await ws.send(json.dumps(ask))
                    first = None
                    while True:
                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
                        if message.get("id") != ask["id"]:
                            continue
                        if message["type"] == "token" and first is None:
                            first = time.perf_counter() - sent
                        elif message["type"] == "answer_done":
                            first_token_s.append(first if first is not None else time.perf_counter() - sent)
                            answer_s.append(time.perf_counter() - sent)
                            break
                        elif message["type"] == "error":
                            errors += 1
                            print(f"client {i}: {message.get('message')}", file=sys.stderr)
                            break
                    finished += 1
        except Exception as exc:  # a timeout or a dropped connection loses the client's remaining questions
            errors += questions - finished
            print(f"client {i}: {type(exc).__name__}: {exc}", file=sys.stderr)

    async def watch_lag(stop: asyncio.Event) -> dict[str, Any]:
        health: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=30) as c:
            while not stop.is_set():
                health = (await c.get(f"/v1/streams/{_STREAM}")).json()
                if health.get("processing_lag_s") is not None:
                    lags.append(float(health["processing_lag_s"]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
        return health

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_lag(stop))
    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    seconds = time.perf_counter() - started
    stop.set()
    stream = await watcher
    return {
        "first_token_s": first_token_s,
        "answer_s": answer_s,
        "errors": errors,
        "lags": lags,
        "seconds": seconds,
        "stream": stream,
    }
