"""Loopback test helpers shared by tests/emulators and tests/site: a hand-moved clock, one
server per module whose app each test swaps in, and a plain blob server.

pytest's default import mode puts tests/ on ``sys.path`` (tests/conftest.py lives there), so
both folders import this module as ``loopback_support``; each folder's conftest.py registers
its fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from worksteps.core.serving import ServedApp, serve_in_thread

__all__ = [
    "T0",
    "BlobServer",
    "Clock",
    "Loopback",
    "Switch",
    "Switchboard",
    "blob_server",
    "loopback",
    "switchboard",
]

T0 = 1_800_000_000.0


class Clock:
    """An emulator's notion of now: it reads time only through this, and only the test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Switch:
    """A loopback server kept for a whole module, serving whichever app the current test set.

    Starting uvicorn costs far more than building an emulator, so tests that each need a fresh
    emulator assign ``app`` instead of starting a server; ``url`` stays the same throughout.
    """

    def __init__(self) -> None:
        self.app: ASGIApp = Starlette()
        self.url = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


Loopback = Callable[[ASGIApp], ServedApp]
Switchboard = Callable[[str], Switch]
BlobServer = Callable[[int], tuple[str, bytes]]


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    """``loopback(app)`` serves ``app`` until the test ends; servers stop newest first."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_in_thread(app))


@pytest.fixture(scope="module")
def switchboard() -> Iterator[Switchboard]:
    """``switchboard(name)``: the module's :class:`Switch` of that name, started on first use.

    One server per name for the whole module, so any fixture of a test may ask for it and
    reaches the same URL; all of them stop when the module is done.
    """
    switches: dict[str, Switch] = {}
    with ExitStack() as stack:

        def switch(name: str) -> Switch:
            if name not in switches:
                switches[name] = Switch()
                switches[name].url = stack.enter_context(serve_in_thread(switches[name])).url
            return switches[name]

        yield switch


@pytest.fixture
def blob_server(loopback: Loopback) -> BlobServer:
    """``blob_server(size)``: a plain HTTP server to pull from, returned as ``(url, payload)``.

    ``<url>/blob`` answers with ``size`` random bytes (the payload) and ``<url>/missing`` with
    404, until the test ends.
    """

    def serve(size: int) -> tuple[str, bytes]:
        payload = os.urandom(size)

        async def blob(request: Request) -> Response:
            return Response(payload, media_type="application/octet-stream")

        async def missing(request: Request) -> Response:
            return Response("gone", status_code=404)

        app = Starlette(routes=[Route("/blob", blob), Route("/missing", missing)])
        return loopback(app).url, payload

    return serve
