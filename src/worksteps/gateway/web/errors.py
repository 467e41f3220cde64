"""Errors as pages for browsers and as RFC 9457 problem documents for the API.

The core's problem handlers stay the single mapping of errors to statuses; this only decides
the representation: a path under ``/api`` (or the OpenAPI and health routes) gets the problem
document, any other path an HTML page with the same status, title and detail. A page that
needs a session sends the browser to sign in instead (303), dropping a cookie that failed.
"""

from __future__ import annotations

import inspect
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from worksteps.core.errors import WorkstepsError, install_problem_handlers
from worksteps.gateway.web.session import SignInRequired
from worksteps.gateway.web.state import gateway_state

__all__ = ["install_error_pages"]

_MACHINE_PREFIXES = ("/api/", "/openapi.json", "/healthz", "/docs", "/static/")


def _wants_page(request: Request) -> bool:
    path = request.url.path
    return not (path == "/api" or path.startswith(_MACHINE_PREFIXES))


def _page_view(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, WorkstepsError):
        return exc.status, exc.title, exc.detail
    if isinstance(exc, StarletteHTTPException):
        title = {404: "Page not found", 405: "Not allowed"}.get(exc.status_code, "Error")
        detail = "There is no page at this address." if exc.status_code == 404 else ""
        return exc.status_code, title, detail or str(exc.detail)
    if isinstance(exc, RequestValidationError):
        return 400, "Bad request", "The form or address is not valid."
    return 500, "Something went wrong", "An unexpected error occurred; it has been logged."


def install_error_pages(app: FastAPI) -> None:
    install_problem_handlers(app)

    def wrap(kind: type[Exception] | int) -> None:
        problem = app.exception_handlers[kind]

        async def handler(request: Request, exc: Exception) -> Response:
            if not _wants_page(request):
                answer = problem(request, exc)
                return await answer if inspect.isawaitable(answer) else answer
            status, title, detail = _page_view(exc)
            pages = gateway_state(request).pages
            page = pages.render(request, "error.html", status=status, title=title, detail=detail)
            if isinstance(exc, WorkstepsError):
                page.headers.update(exc.headers)  # Retry-After of a 429, for one
            return page

        app.add_exception_handler(kind, handler)

    for kind in (WorkstepsError, StarletteHTTPException, RequestValidationError, Exception):
        wrap(kind)

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        state = gateway_state(request)
        response = RedirectResponse(
            "/signin?" + urlencode({"next": exc.next_path}), status_code=303
        )
        if state.sessions.cookie in request.cookies:
            state.sessions.end(response)
        return response

    app.add_exception_handler(SignInRequired, sign_in_first)
