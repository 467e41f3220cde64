"""Harbor's wire conventions shared by its REST and registry APIs.

Errors are ``{"errors": [{"code", "message"}]}`` on both APIs; times are UTC with
milliseconds and ``Z``, and an unset time is Go's zero time ``0001-01-01T00:00:00.000Z``;
lists page with ``page``/``page_size`` (default 10, at most 100), the total in
``X-Total-Count`` and the neighbours in ``Link``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["ZERO_TIME", "error", "iso", "page"]

ZERO_TIME = "0001-01-01T00:00:00.000Z"
T = TypeVar("T")


def iso(instant: float | None) -> str:
    if instant is None:
        return ZERO_TIME
    text = datetime.fromtimestamp(instant, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"errors": [{"code": code, "message": message}]}
    return JSONResponse(body, status_code=status, headers=headers)


def page(request: Request, items: Sequence[T]) -> tuple[list[T], dict[str, str]] | JSONResponse:
    """The requested page of ``items`` and its paging headers, or a 400 for bad parameters."""
    try:
        number = int(request.query_params.get("page", "1"))
        size = int(request.query_params.get("page_size", "10"))
    except ValueError:
        return error(400, "BAD_REQUEST", "page and page_size must be integers")
    if number < 1 or size < 1 or size > 100:
        return error(400, "BAD_REQUEST", "page must be >= 1 and page_size in 1..100")
    start = (number - 1) * size
    headers = {"X-Total-Count": str(len(items))}
    links = []
    params: dict[str, Any] = dict(request.query_params)
    if number > 1:
        links.append(
            f'<{request.url.path}?{urlencode({**params, "page": number - 1})}>; rel="prev"'
        )
    if start + size < len(items):
        links.append(
            f'<{request.url.path}?{urlencode({**params, "page": number + 1})}>; rel="next"'
        )
    if links:
        headers["Link"] = " , ".join(links)
    return list(items[start : start + size]), headers
