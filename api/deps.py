"""Typed dependencies: the service, and the API key a route needs (scope checked, rate limited).

The one place that reads `app.state`; routes receive what they need as parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import RateLimitedError, UnavailableError
from .security import SCOPES, ApiKey, RateLimiter, bearer_token, require
from .service import Service

_bearer = HTTPBearer(auto_error=False, description="An API key from `vidsight keys create`.")
_OPEN_KEY = ApiKey("open", "keys not required", frozenset(SCOPES), 0.0)


def get_service(request: Request) -> Service:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None or service.started_s is None:
        raise UnavailableError("the service is still starting")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def authenticate(service: Service, token: str | None, authorization: str | None, *scopes: str) -> ApiKey:
    """The key a request carries, checked for one of `scopes` and charged one request of its rate limit."""
    if not service.api.require_keys:
        return _OPEN_KEY
    key = service.keys.verify(bearer_token(authorization, token))
    if not any(key.allows(s) for s in scopes):
        require(key, scopes[0])
    charge(service.limiter, key, service)
    return key


def charge(limiter: RateLimiter, key: ApiKey, service: Service) -> None:
    wait_s = limiter.acquire(key.key_id)
    if wait_s is not None:
        service.metrics.rate_limited.inc()
        raise RateLimitedError(
            f"API key {key.key_id} is over its rate limit ({limiter.rate_per_s:g}/s, burst {limiter.burst}); "
            f"retry in {wait_s:.2f} s",
            wait_s,
        )


def needs(*scopes: str) -> Callable[..., ApiKey]:
    """A dependency: the request's key, holding one of `scopes`."""

    def dependency(
        service: ServiceDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        header = f"{credentials.scheme} {credentials.credentials}" if credentials is not None else None
        return authenticate(service, None, header, *scopes)

    dependency.__name__ = "needs_" + "_or_".join(scopes)
    return dependency


ReadKey = Annotated[ApiKey, Depends(needs("read"))]
IngestKey = Annotated[ApiKey, Depends(needs("ingest"))]
AdminKey = Annotated[ApiKey, Depends(needs("admin"))]
JobsKey = Annotated[ApiKey, Depends(needs("read", "ingest"))]  # who ingests may follow its jobs


def websocket_service(websocket: WebSocket) -> Service:
    service: Service | None = getattr(websocket.app.state, "service", None)
    if service is None or service.started_s is None:
        raise UnavailableError("the service is still starting")
    return service
