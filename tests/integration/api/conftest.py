"""One real server for the API tests: `vidsight serve` (uvicorn, Ray pipeline, tiny models) in a
subprocess, on a test-started redis-server, with keys made by `vidsight keys create`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from vidsight.synth.servers import free_port
from vidsight.synth.video import moving_boxes_script, write_video

SERVER_ENV = {
    "VIDSIGHT_API__RATE_PER_S": "50",
    "VIDSIGHT_API__RATE_BURST": "60",
    "VIDSIGHT_API__MAX_UPLOAD_BYTES": str(2 << 20),
    "VIDSIGHT_API__WS_QUEUE_MESSAGES": "64",
    "VIDSIGHT_API__MAX_ANSWER_TOKENS": "32",
    "VIDSIGHT_API__HEALTH_PUSH_INTERVAL_S": "0.5",
    "VIDSIGHT_INGEST__SAMPLE_FPS": "2",
    "VIDSIGHT_COMPRESSOR__MAX_EVENT_GRIDS": "5",
    "VIDSIGHT_MEMORY__MAINTENANCE_INTERVAL_S": "0",
    "RAY_AUTH_MODE": "disabled",
}


@dataclass
class Server:
    url: str
    data_dir: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/live"

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def client(self, scope: str | None = "admin", timeout_s: float = 60.0) -> httpx.Client:
        headers = self.auth(scope) if scope else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return vidsight_cli(self.env, *args)

    def new_key(self, *scopes: str) -> str:
        args = [a for s in scopes for a in ("--scope", s)]
        result = self.cli("keys", "create", *args, "--json")
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["token"])

    def fresh_key(self, *scopes: str) -> str:
        return direct_key(self.env["VIDSIGHT_REDIS_URL"], *scopes)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def vidsight_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def direct_key(redis_url: str, *scopes: str) -> str:
    """A key made straight in Redis (the CLI path has its own test; it costs seconds per call)."""
    import redis

    from api.config import ApiSettings
    from api.security import KeyStore

    token, _ = KeyStore(
        redis.Redis.from_url(redis_url, decode_responses=True), ApiSettings().keys_prefix
    ).create(scopes)
    return token


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import redis

            if redis.Redis(port=port).ping():
                return process, port
        except Exception:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def wait_healthy(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"vidsight serve exited:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"vidsight serve not healthy after {timeout_s} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-server")
    redis_process, redis_port = start_redis(root)
    data_dir = root / "data"
    (data_dir / "videos").mkdir(parents=True)
    write_video(
        data_dir / "videos" / "sample.mp4", moving_boxes_script(320, 240, 30, 12, [6.0]), gop_frames=30
    )
    port = free_port()
    env = {
        **os.environ,
        **SERVER_ENV,
        "VIDSIGHT_DATA_DIR": str(data_dir),
        "VIDSIGHT_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "VIDSIGHT_API__PORT": str(port),
    }
    log_path = root / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=log,
        )
    server = Server(f"http://127.0.0.1:{port}", data_dir, env, log_path, process)
    try:
        server.keys = {
            scope: direct_key(env["VIDSIGHT_REDIS_URL"], scope) for scope in ("read", "ingest", "admin")
        }
        wait_healthy(server, 120)
        yield server
    finally:
        stop_server(server)
        redis_process.kill()
        redis_process.wait(5)


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(60)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)


@pytest.fixture(scope="session")
def ingested(server):
    """The sample video ingested through POST /v1/videos (server-side path); returns its job."""
    with server.client("ingest") as c:
        r = c.post("/v1/videos", json={"path": "sample.mp4", "stream_id": "sample"})
        assert r.status_code == 202, r.text
        job = r.json()
        deadline = time.monotonic() + 90
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.25)
            job = c.get(f"/v1/videos/{job['job_id']}").json()
    assert job["state"] == "done", (job, server.log_tail())
    return job
