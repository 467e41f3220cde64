"""RFC 9457 problem details and the one exception hierarchy every service maps from.

    WorkstepsError                 machine ``reason`` + human ``detail``; HTTP status
    ├── BadRequest        400      the body could not be read (syntax, encoding)
    ├── InvalidInput      422      well-formed, but a field is invalid (carries ``errors``)
    ├── Unauthorized      401      no valid bearer token (never says why in detail)
    ├── Forbidden         403      signed in, but the role does not allow it
    ├── NotFound          404      unknown identifier (or not yours: same answer)
    ├── Conflict          409      the state changed under you (refused transition, lost race)
    ├── PayloadTooLarge   413
    ├── UnsupportedMedia  415
    ├── NotAcceptable     406
    ├── TooManyRequests   429      rate limited (carries Retry-After)
    └── Unavailable       503      a dependency is down; retry later

Services register :func:`install_problem_handlers` once; handlers never leak tracebacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "InvalidInput",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMedia",
    "WorkstepsError",
    "install_problem_handlers",
    "problem_response",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://worksteps.example.org/problems/"


class FieldError(dict[str, str]):
    """One invalid field: ``{"field": "compute.cores.min", "reason": "..."}``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field=field, reason=reason)


class WorkstepsError(Exception):
    """Base error: a machine ``reason`` (a short slug) and a human ``detail``."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason or self.title.lower().replace(" ", "-")
        self.extra = extra or {}
        self.headers = headers or {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.reason,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "reason": self.reason,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(WorkstepsError):
    status = 400
    title = "Bad request"


class InvalidInput(WorkstepsError):
    status = 422
    title = "Invalid input"

    def __init__(
        self, detail: str, errors: Sequence[FieldError], *, reason: str = "invalid-input"
    ) -> None:
        super().__init__(detail, reason=reason, extra={"errors": list(errors)})
        self.errors = list(errors)


class Unauthorized(WorkstepsError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(
            detail, reason="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="worksteps"'}
        )


class Forbidden(WorkstepsError):
    status = 403
    title = "Forbidden"


class NotFound(WorkstepsError):
    status = 404
    title = "Not found"


class Conflict(WorkstepsError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(WorkstepsError):
    status = 413
    title = "Payload too large"


class UnsupportedMedia(WorkstepsError):
    status = 415
    title = "Unsupported media type"


class NotAcceptable(WorkstepsError):
    status = 406
    title = "Not acceptable"


class TooManyRequests(WorkstepsError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(
            detail,
            reason="rate-limited",
            extra={"retryAfter": retry_after},
            headers={"Retry-After": str(max(1, retry_after))},
        )


class Unavailable(WorkstepsError):
    status = 503
    title = "Service unavailable"


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=int(body["status"]), media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _location(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error a service can raise to a problem document (and nothing else)."""

    async def on_worksteps(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WorkstepsError)
        return problem_response(exc.problem(str(request.url.path)), headers=exc.headers or None)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [FieldError(_location(e["loc"]), str(e["msg"])) for e in exc.errors()]
        err = InvalidInput("The request is not valid.", errors)
        return problem_response(err.problem(str(request.url.path)))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        body = {
            "type": "about:blank",
            "title": str(exc.detail) if exc.detail else "HTTP error",
            "status": exc.status_code,
            "detail": str(exc.detail),
            "instance": str(request.url.path),
        }
        return problem_response(body, headers=dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        err = WorkstepsError("An unexpected error occurred; it has been logged.", reason="internal")
        return problem_response(err.problem(str(request.url.path)))

    app.add_exception_handler(WorkstepsError, on_worksteps)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
