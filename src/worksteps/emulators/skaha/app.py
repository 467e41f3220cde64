"""The Skaha emulator application: routes, error answers, lifespan, fault injection.

Start-up creates the data root; shutdown stops every session and kills every process it
started, so an emulator that is stopped (or a test that ends) leaves nothing running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from worksteps.emulators.faults import FaultInjector, FaultRule
from worksteps.emulators.skaha.config import SkahaConfig
from worksteps.emulators.skaha.errors import SkahaError, skaha_error_response
from worksteps.emulators.skaha.pages import pages_router, vosi_router
from worksteps.emulators.skaha.routes import router
from worksteps.emulators.skaha.supervisor import SessionSupervisor

__all__ = ["create_app"]


async def _plain_http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes and methods answer in Skaha's text/plain style too."""
    assert isinstance(exc, StarletteHTTPException)
    return PlainTextResponse(
        f"{exc.detail}\n", status_code=exc.status_code, headers=dict(exc.headers or {})
    )


def create_app(
    config: SkahaConfig, faults: list[FaultRule] | None = None, seed: int | None = None
) -> FaultInjector:
    """A Skaha v1 service on ``/skaha``, its session pages on ``/session``, and ``/_emulator``."""
    supervisor = SessionSupervisor(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config.data_root.mkdir(parents=True, exist_ok=True)
        try:
            yield
        finally:
            await supervisor.shutdown()

    app = FastAPI(
        title="Skaha v1 (Worksteps emulator)",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.state.supervisor = supervisor
    app.add_exception_handler(SkahaError, skaha_error_response)
    app.add_exception_handler(StarletteHTTPException, _plain_http_error)
    app.include_router(router)
    app.include_router(vosi_router)
    app.include_router(pages_router)
    return FaultInjector(app, rules=faults, seed=seed)
