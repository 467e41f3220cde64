"""Assemble one emulated Cavern: routes under ``config.path_prefix``, fault injection around.

Route map (all under ``/cavern`` by default): ``/capabilities``, ``/availability``,
``/nodes/{path}``, ``/synctrans``, ``/xfer/{job}``, ``/transfers[/{job}[/phase|/error|
/results/transferDetails]]``, ``/async-delete[/{job}[/phase|/error]]``, ``/files/{path}`` and
``/preauth:{grant}/{path}``. Jobs still running when the app shuts down are aborted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from worksteps.emulators.faults import FaultInjector

from .config import CavernConfig
from .files import file_routes
from .nodes import node_routes
from .service import CavernService
from .uws import job_routes

__all__ = ["create_app"]


def create_app(config: CavernConfig) -> ASGIApp:
    """A Cavern emulator (an ASGI app) wrapped in a :class:`FaultInjector`."""
    service = CavernService(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.board.abort_all()
        await service.runner.aclose()

    routes = node_routes(service) + job_routes(service) + file_routes(service)
    app = Starlette(routes=[Mount(config.path_prefix, routes=routes)], lifespan=lifespan)
    return FaultInjector(app, config.faults)
