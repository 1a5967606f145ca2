"""API keys, rate limits and allow-lists: everything checked before a request touches anything.

Keys are bearer tokens `vsk_<id>_<secret>` (a 12-hex id and 32 random bytes). Redis keeps only a
SHA-256 of the whole token, its scopes, name and times, under `<prefix><id>`: a leaked Redis dump
gives no usable key. A token's secret has 256 bits of entropy, so a plain hash (no salt, no slow KDF)
cannot be brute-forced; the comparison is constant-time.

Scopes: `read` (search, ask, events, listings, metrics, the live WebSocket), `ingest` (add and remove
streams and videos) and `admin` (alerts, event pins and deletion; implies every scope).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError

SCOPES = ("read", "ingest", "admin")
_TOKEN_PREFIX = "vsk_"
_ID_CHARS = 12


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    created_s: float
    revoked_s: float | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_s is not None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "created_s": self.created_s,
            "revoked_s": self.revoked_s,
        }


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(scopes)
    unknown = sorted(chosen - set(SCOPES))
    if unknown or not chosen:
        raise BadRequestError(f"scopes must be one or more of {', '.join(SCOPES)}; got {sorted(chosen)}")
    return chosen


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str]:
    """(key id, secret) of a well-formed token; UnauthorizedError otherwise."""
    if not token.startswith(_TOKEN_PREFIX):
        raise UnauthorizedError(f"API keys start with {_TOKEN_PREFIX!r}; this one does not")
    key_id, _, secret = token[len(_TOKEN_PREFIX) :].partition("_")
    if len(key_id) != _ID_CHARS or not secret or any(c not in "0123456789abcdef" for c in key_id):
        raise UnauthorizedError("malformed API key")
    return key_id, secret


class KeyStore:
    """Hashed API keys in Redis. `redis` is a redis-py client with decode_responses=True."""

    def __init__(self, redis: Any, prefix: str, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.prefix = prefix
        self._clock = clock

    def create(self, scopes: Iterable[str], name: str = "") -> tuple[str, ApiKey]:
        """A new key: returns the token (shown once, never stored) and its record."""
        chosen = check_scopes(scopes)
        key_id = secrets.token_hex(_ID_CHARS // 2)
        token = f"{_TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, name[:200], chosen, self._clock())
        self.redis.hset(
            self.prefix + key_id,
            mapping={
                "hash": hash_token(token),
                "name": key.name,
                "scopes": ",".join(sorted(chosen)),
                "created_s": repr(key.created_s),
                "revoked_s": "",
            },
        )
        return token, key

    def verify(self, token: str) -> ApiKey:
        """The key a token names; UnauthorizedError when unknown, wrong or revoked."""
        key_id, _ = split_token(token)
        fields = self.redis.hgetall(self.prefix + key_id)
        if not fields or not hmac.compare_digest(fields.get("hash", ""), hash_token(token)):
            raise UnauthorizedError("unknown API key")
        key = _record(key_id, fields)
        if key.is_revoked:
            raise UnauthorizedError(f"API key {key_id} was revoked")
        return key

    def all(self) -> list[ApiKey]:
        keys = []
        for name in self.redis.scan_iter(match=self.prefix + "*", count=500):
            fields = self.redis.hgetall(name)
            if fields:
                keys.append(_record(name[len(self.prefix) :], fields))
        return sorted(keys, key=lambda k: k.created_s)

    def revoke(self, key_id: str) -> ApiKey:
        name = self.prefix + key_id
        if not self.redis.exists(name):
            raise NotFoundError(f"no API key with id {key_id!r}")
        self.redis.hset(name, "revoked_s", repr(self._clock()))
        return _record(key_id, self.redis.hgetall(name))


def _record(key_id: str, fields: dict[str, str]) -> ApiKey:
    revoked = fields.get("revoked_s") or None
    return ApiKey(
        key_id=key_id,
        name=fields.get("name", ""),
        scopes=frozenset(s for s in fields.get("scopes", "").split(",") if s),
        created_s=float(fields.get("created_s") or 0.0),
        revoked_s=float(revoked) if revoked else None,
    )


def bearer_token(authorization: str | None, query_token: str | None = None) -> str:
    """The token from `Authorization: Bearer ...` or, for browsers' WebSockets, `?token=...`."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise UnauthorizedError("Authorization must be 'Bearer <API key>'")
        return value.strip()
    if query_token:
        return query_token
    raise UnauthorizedError("an API key is required: send 'Authorization: Bearer <key>'")


def require(key: ApiKey, scope: str) -> None:
    if not key.allows(scope):
        raise ForbiddenError(f"API key {key.key_id} lacks scope {scope!r} (it has {sorted(key.scopes)})")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


@dataclass
class RateLimiter:
    """A token bucket per key: `burst` requests at once, refilled at `rate_per_s`."""

    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, key_id: str) -> float | None:
        """Take one request from the key's bucket: None if allowed, else seconds until one is."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated_s) * self.rate_per_s)
            bucket.updated_s = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.rate_per_s


class PathPolicy:
    """Server-side paths a client may name: regular files that resolve (symlinks followed) under a root."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = [Path(r).resolve() for r in roots]
        if not self.roots:
            raise ValueError("PathPolicy needs at least one root")

    def resolve(self, path: str) -> Path:
        if not path or "\x00" in path:
            raise BadRequestError(f"path must be a non-empty string without NUL bytes, got {path!r}")
        candidate = Path(os.path.expanduser(path)) if path.startswith("~") else Path(path)
        if not candidate.is_absolute():
            candidate = self.roots[0] / candidate
        resolved = candidate.resolve()  # follows symlinks, collapses ".."
        if not any(resolved.is_relative_to(root) for root in self.roots):
            allowed = ", ".join(str(r) for r in self.roots)
            raise ForbiddenError(f"path {path!r} is outside the allowed roots ({allowed})")
        if not resolved.is_file():
            raise NotFoundError(f"no such file under the allowed roots: {path!r}")
        return resolved


def check_url(url: str, allowed_schemes: Iterable[str]) -> str:
    """A URL whose scheme is allow-listed and which names a host."""
    allowed = sorted({s.lower() for s in allowed_schemes})
    parsed = urllib.parse.urlparse(url.strip())
    scheme = parsed.scheme.lower()
    if scheme not in allowed:
        raise BadRequestError(
            f"URL scheme {scheme or '(none)'!r} is not allowed; allowed: {', '.join(allowed)}"
        )
    if not parsed.hostname:
        raise BadRequestError(f"URL {url!r} names no host")
    return url.strip()
