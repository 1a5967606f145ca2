"""API errors: each carries its HTTP status and a stable code; messages name the bad value and what
is allowed. Clients get `{"error": {"status", "code", "message"}}`, never a stack trace."""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"error": {"status": self.status, "code": self.code, "message": self.message}}


class BadRequestError(ApiError):
    status, code = 400, "bad_request"


class UnauthorizedError(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="vidsight"'})


class ForbiddenError(ApiError):
    status, code = 403, "forbidden"


class NotFoundError(ApiError):
    status, code = 404, "not_found"


class ConflictError(ApiError):
    status, code = 409, "conflict"


class PayloadTooLargeError(ApiError):
    status, code = 413, "payload_too_large"


class UnprocessableError(ApiError):
    status, code = 422, "unprocessable"


class RateLimitedError(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, round(retry_after_s + 0.5)))})
        self.retry_after_s = retry_after_s


class UnavailableError(ApiError):
    status, code = 503, "unavailable"
