"""Real components for alert tests: Redis (the system server under a unique key prefix, or a
test-started redis-server where restarts matter), the memory bank, MiniLM (real weights), the tiny
random SigLIP and the tiny random Qwen2.5-VL as verifier, Mosquitto at 127.0.0.1:1883."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import redis

from api.alerts import AlertEngine, AlertSettings, LLMVerifier, VerifySettings
from compressor.records import Event
from memory import MemoryBank, MemorySettings

SYSTEM_URL = "redis://127.0.0.1:6379/0"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
SIGLIP_DIM = 32  # the tiny SigLIP's embedding size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of our own with AOF (fsync always) in a temporary folder, on a free port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server not installed"
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def prefix():
    value = f"vsalert:{uuid.uuid4().hex[:10]}:"
    yield value
    client = redis.Redis.from_url(SYSTEM_URL)
    keys = list(client.scan_iter(match=f"{value}*", count=1000))
    if keys:
        client.delete(*keys)


def memory_settings(prefix: str) -> MemorySettings:
    return MemorySettings(redis_key_prefix=prefix + "mem:", maintenance_interval_s=0, min_free_disk_bytes=0)


@pytest.fixture
def bank(tmp_path, prefix):
    b = MemoryBank(memory_settings(prefix), data_dir=tmp_path / "data", redis_url=SYSTEM_URL)
    yield b
    b.close(snapshot=False)


@pytest.fixture(scope="session")
def minilm():
    from encoder.text import TextEmbedder
    from encoder.text.config import IndexSettings

    embedder = TextEmbedder(IndexSettings())
    embedder.warmup()
    return embedder


@pytest.fixture(scope="session")
def tiny_siglip():
    from encoder import EncoderSettings, RetrievalEncoder

    return RetrievalEncoder.from_settings(
        EncoderSettings(retrieval_model="tiny", device="cpu", dtype="float32")
    )


@pytest.fixture(scope="session")
def tiny_runner():
    from llm import LLMSettings, Runner, load_model

    s = LLMSettings(model_preset="tiny", dtype="float32", device="cpu", max_context_tokens=1024,
                    compile_decode="none", max_new_tokens=16)  # fmt: skip
    return Runner(s, model=load_model(s))


@pytest.fixture(scope="session")
def llm_dim(tiny_runner) -> int:
    return int(tiny_runner.model.config.vision_config.out_hidden_size)


def alert_settings(prefix: str, **overrides) -> AlertSettings:
    base = {
        "redis_key_prefix": prefix + "alerts:",
        "follow_block_ms": 100,
        "webhook": {"backoff_base_s": 0.05, "backoff_cap_s": 0.2, "timeout_s": 2.0},
        "mqtt": {"host": MQTT_HOST, "port": MQTT_PORT, "client_id": f"vidsight-test-{uuid.uuid4().hex[:8]}"},
        "verify": {"timeout_s": 20.0, "explanation_max_tokens": 8},
    }
    return AlertSettings.model_validate({**base, **overrides})


@pytest.fixture
async def make_engine(prefix, bank, minilm, tiny_siglip, tiny_runner):
    """make_engine(url=..., memory=..., verifier=..., **settings overrides) -> AlertEngine (stopped after)."""
    engines: list[AlertEngine] = []

    def make(*, url: str = SYSTEM_URL, memory=None, verifier="llm", **overrides) -> AlertEngine:
        if verifier == "llm":
            verifier = LLMVerifier(tiny_runner, VerifySettings(explanation_max_tokens=8))
        engine = AlertEngine(alert_settings(prefix, **overrides), redis=url, memory=memory or bank,
                             embed_text=tiny_siglip, embed_passage=minilm, verifier=verifier)  # fmt: skip
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.stop()


def make_event(
    stream_id: str, i: int, t_s: float, text: str = "", *, llm_dim: int = 16, duration_s: float = 4.0,
    wall: bool = False,
) -> Event:  # fmt: skip
    """A real Event: random (seeded) tokens at real grid positions, a random unit SigLIP-sized embedding."""
    from llm.visual_input import event_from_tokens

    rng = np.random.default_rng(abs(hash((stream_id, i))) % 2**32)
    grids, hw = 2, (2, 3)
    tokens = rng.standard_normal((grids * hw[0] * hw[1], llm_dim)).astype(np.float16)
    pts = t_s + np.arange(grids * 2) * (duration_s / (grids * 2 - 1))
    event = event_from_tokens(tokens, grids, hw, pts, temporal_patch_size=2, stream_id=stream_id,
                              event_id=f"{stream_id}:{i}", grid_t0=i * grids)  # fmt: skip
    emb = rng.standard_normal(SIGLIP_DIM).astype(np.float32)
    wall_s = (1_700_000_000.0 + t_s, 1_700_000_000.0 + t_s + duration_s) if wall else (None, None)
    return dataclasses.replace(event, embedding=emb / np.linalg.norm(emb), text=text,
                               start_wall_s=wall_s[0], end_wall_s=wall_s[1])  # fmt: skip
