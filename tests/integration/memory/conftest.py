"""Real Redis for memory tests: the system server (127.0.0.1:6379, keys under a unique prefix per
test) or a test-started redis-server with persistence where restarts matter."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis

from memory import MemoryBank, MemorySettings

SYSTEM_URL = "redis://127.0.0.1:6379/0"
REDIS_SERVER = shutil.which("redis-server", path="/usr/bin") or shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of our own: AOF on (fsync always), in a temporary folder, on a free port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, persistent: bool = True) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if persistent else "no",
            "--appendfsync",
            "always",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis-server")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def prefix():
    value = f"vstest:{uuid.uuid4().hex[:10]}:"
    yield value
    client = redis.Redis.from_url(SYSTEM_URL)
    keys = list(client.scan_iter(match=f"{value}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def settings(prefix) -> MemorySettings:
    return MemorySettings(
        redis_key_prefix=prefix,
        maintenance_interval_s=0,
        exact_max_events=64,
        min_free_disk_bytes=0,
        redis_retries=1,
        redis_backoff_base_s=0.02,
        redis_backoff_cap_s=0.05,
        redis_probe_interval_s=0.1,
        redis_connect_timeout_s=0.5,
        redis_socket_timeout_s=1.0,
        token_cache_bytes=1 << 20,
    )


@pytest.fixture
def open_bank(tmp_path, settings):
    """open_bank(**overrides) -> a MemoryBank on the system Redis; closed after the test."""
    banks: list[MemoryBank] = []

    def opener(data_dir: Path | None = None, url: str | None = SYSTEM_URL, **overrides) -> MemoryBank:
        bank = MemoryBank(
            settings.model_copy(update=overrides), data_dir=data_dir or tmp_path / "data", redis_url=url
        )
        banks.append(bank)
        return bank

    yield opener
    for bank in banks:
        bank.close(snapshot=False)
