"""Assemble the Harbor emulator: one state, its REST and registry APIs, fault injection."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from worksteps.emulators.faults import FaultInjector, FaultRule
from worksteps.emulators.harbor.auth import Accounts, TokenService
from worksteps.emulators.harbor.config import HarborConfig, ProjectSpec
from worksteps.emulators.harbor.oci import OciApi, oci_routes
from worksteps.emulators.harbor.replication import Replication
from worksteps.emulators.harbor.replication_api import replication_routes
from worksteps.emulators.harbor.rest import RestApi, rest_routes
from worksteps.emulators.harbor.state import RegistryState
from worksteps.emulators.harbor.wire import error

__all__ = ["create_app"]


def create_app(
    config: HarborConfig,
    *,
    clock: Callable[[], float] = time.time,
    faults: list[FaultRule] | None = None,
) -> FaultInjector:
    """An emulated Harbor (REST ``/api/v2.0``, OCI ``/v2/``, ``/service/token``).

    ``clock`` (seconds since the epoch) decides every time-based answer; tests may pass a
    controllable one. The app is wrapped in :class:`FaultInjector` with ``faults``.
    """
    state = RegistryState(config, clock)

    def project(name: str) -> ProjectSpec | None:
        found = state.projects.get(name)
        return found.spec if found else None

    accounts = Accounts(config)
    tokens = TokenService(config, accounts, project)
    rest = RestApi(state, accounts)
    routes = [
        *rest_routes(rest),
        *replication_routes(rest, Replication(state)),
        *oci_routes(OciApi(state, accounts, tokens)),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, "NOT_FOUND", f"{request.url.path} not found")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, "METHOD_NOT_ALLOWED", f"{request.method} not allowed")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    return FaultInjector(app, faults)
