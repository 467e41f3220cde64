"""Skaha's error answers: a status and a ``text/plain`` message, as cadc-rest writes them.

    400  IllegalArgumentException, UnsupportedOperationException (bad parameter, quota, renew)
    401  not authenticated
    403  access denied
    404  not found (also another user's session)

The messages are the real service's, word for word, because clients and people match on them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

__all__ = ["SkahaError", "skaha_error_response"]


class SkahaError(Exception):
    """An error answer of the emulated service."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


async def skaha_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SkahaError)
    return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=exc.headers)
