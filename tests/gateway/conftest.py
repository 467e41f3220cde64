"""The gateway's fixtures: one issuer with a development sign-in and one gateway trusting it,
both served on loopback for the whole session; Debian's Chromium driven by Playwright."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from gateway_support import (
    FullGateway,
    Gateway,
    SignInIssuer,
    gateway_settings,
    notes_pages,
    probe_router,
    serve_full_gateway,
    signin_config,
)
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from worksteps.core.serving import free_port, serve_in_thread, start_in_thread
from worksteps.emulators.oidc import LocalIssuer
from worksteps.emulators.oidc import create_app as create_issuer
from worksteps.gateway import GatewayAuthenticator, NavLink, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def signin_issuer() -> Iterator[SignInIssuer]:
    origins = {
        name: f"http://127.0.0.1:{free_port()}" for name in ("extended", "plain", "full", "seed")
    }
    port = free_port()
    issuer = LocalIssuer(f"http://127.0.0.1:{port}")
    served = start_in_thread(create_issuer(issuer, signin_config([*origins.values()])), port=port)
    try:
        yield SignInIssuer(issuer, origins)
    finally:
        served.stop()


def _serve(
    issuer: SignInIssuer,
    name: str,
    routers: Callable[[GatewayAuthenticator], list[APIRouter]] = lambda _: [],
    **extensions: Any,
) -> Iterator[Gateway]:
    origin = issuer.origins[name]
    settings = gateway_settings(origin, issuer.issuer.issuer)
    authenticator = GatewayAuthenticator(settings)
    app = create_app(
        settings, authenticator=authenticator, routers=routers(authenticator), **extensions
    )
    served = start_in_thread(app, port=int(origin.rsplit(":", 1)[1]))
    try:
        yield Gateway(served, settings, issuer.issuer)
    finally:
        served.stop()


@pytest.fixture(scope="session")
def gateway(signin_issuer: SignInIssuer) -> Iterator[Gateway]:
    """A gateway extended as the editor and execution will extend it: an API router built
    with its authenticator (``/api/probe``) and a page router with a form (``/notes``)."""
    yield from _serve(
        signin_issuer,
        "extended",
        routers=lambda authenticator: [probe_router(authenticator)],
        pages=[notes_pages()],
        nav=[NavLink("Notes", "/notes")],
        templates=[Path(__file__).parent / "templates"],
    )


@pytest.fixture(scope="session")
def plain_gateway(signin_issuer: SignInIssuer) -> Iterator[Gateway]:
    """The gateway exactly as it ships (for the README's screenshots)."""
    yield from _serve(signin_issuer, "plain")


@pytest.fixture(scope="session")
def full_gateway(
    signin_issuer: SignInIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FullGateway]:
    # imported here so that the other gateway tests do not depend on the broker's modules
    from worksteps.broker.api.app import create_app as create_broker
    from worksteps.broker.settings import BrokerSettings, Capacity

    data = tmp_path_factory.mktemp("full-gateway")
    with ExitStack() as stack:
        brokers: dict[str, str] = {}
        for name, cores in (("site-a", 8), ("site-b", 16)):  # one by one: Alembic is global
            broker = BrokerSettings(
                site=name,
                database_url=f"sqlite:///{data / name}.sqlite",
                capacity=Capacity(cores=cores, memory=cores * 4, gpus=0, storage=100),
            )
            brokers[name] = stack.enter_context(serve_in_thread(create_broker(broker))).url
        brokers["site-c"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        yield serve_full_gateway(stack, signin_issuer, "full", brokers, data)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright for one test module: its sync API keeps an event loop running in this
    thread, which asyncio tests elsewhere cannot share, so it must stop when the module does."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test."""
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
