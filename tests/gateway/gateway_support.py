"""Helpers shared by the gateway's tests: a served issuer with a sign-in, a served gateway, and
signing in over plain HTTP the way a browser does (following the issuer's form by hand).

pytest puts this folder on ``sys.path`` (it has a conftest.py and no ``__init__.py``), so the
test modules import this as ``gateway_support``.
"""

import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from worksteps.core.auth import AuthSettings, Principal
from worksteps.core.database import Database
from worksteps.core.serving import ServedApp, serve_in_thread
from worksteps.editor.fetch import Fetcher
from worksteps.editor.service import EditorService
from worksteps.editor.settings import EditorSettings, FetchSettings
from worksteps.editor.store import WorkstepStore
from worksteps.editor.templates import Catalogue
from worksteps.emulators.oidc import DevUser, LocalIssuer, OidcClient, SignInConfig
from worksteps.execution.api import build_registry
from worksteps.execution.registry import Site
from worksteps.execution.service import ExecutionService
from worksteps.execution.settings import ExecutionSettings
from worksteps.gateway import GatewayAuthenticator, GatewaySettings, create_app
from worksteps.gateway.web.guards import signed_in
from worksteps.gateway.web.state import gateway_state

__all__ = [
    "CLIENT_ID",
    "SECRET",
    "USERS",
    "FullGateway",
    "Gateway",
    "SignInIssuer",
    "hidden_fields",
    "notes_pages",
    "probe_router",
    "serve_full_gateway",
    "sign_in",
    "signin_config",
]

SignedIn = Annotated[Principal, Depends(signed_in)]
CLIENT_ID = "worksteps-gateway"
SECRET = "test-cookie-secret-0123456789abcdef"
USERS = [
    DevUser(name="alice", display="Alice (astronomer)"),
    DevUser(name="bob", display="Bob (astronomer)"),
    DevUser(name="admin", display="Site operator", roles=["admin"]),
]


def signin_config(gateway_origins: list[str]) -> SignInConfig:
    return SignInConfig(
        users=USERS,
        clients=[
            OidcClient(
                client_id=CLIENT_ID,
                name="Worksteps Science Gateway",
                redirect_prefixes=[f"{o}/signin/callback" for o in gateway_origins],
            )
        ],
    )


@dataclass
class Gateway:
    """A gateway served on loopback, with the issuer it trusts."""

    served: ServedApp
    settings: GatewaySettings
    issuer: LocalIssuer

    @property
    def url(self) -> str:
        return self.served.url


@dataclass
class FullGateway(Gateway):
    """The gateway with the Workstep Editor and the execution service in it, in front of two
    booking-only brokers (site-a, site-b) and one that is down (site-c)."""

    brokers: dict[str, str] = field(default_factory=dict)


def gateway_settings(origin: str, issuer: str, **changes: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "auth": AuthSettings(issuer=issuer, jwks_refresh=0),
        "client_id": CLIENT_ID,
        "base_url": origin,
        "cookie_secret": SECRET,
    }
    values.update(changes)
    return GatewaySettings(**values)


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page (the issuer's sign-in form, the gateway's forms)."""
    return {name: unescape(value) for name, value in _HIDDEN.findall(html)}


def sign_in(client: httpx.Client, gateway: str, user: str = "alice", next: str = "/") -> str:
    """Sign ``client`` in through the issuer's page as ``user``; the page it lands on."""
    start = client.get(f"{gateway}/signin", params={"next": next})
    assert start.status_code == 303, start.text
    page = client.get(start.headers["location"])
    assert page.status_code == 200, page.text
    form = hidden_fields(page.text)
    chosen = client.post(
        page.url.copy_with(query=None), data={**form, "user": user, "action": "signin"}
    )
    assert chosen.status_code == 303, chosen.text
    assert parse_qs(urlsplit(chosen.headers["location"]).query).get("code")
    landed = client.get(chosen.headers["location"])
    assert landed.status_code == 303, landed.text
    return landed.headers["location"]


def probe_router(authenticator: GatewayAuthenticator) -> APIRouter:
    """A JSON router as the editor's or execution's will be: built with the gateway's
    authenticator, mounted under /api."""
    router = APIRouter()

    @router.post("/probe")
    async def probe(principal: Annotated[Principal, Depends(authenticator)]) -> dict[str, str]:
        return {"subject": principal.subject}

    return router


def notes_pages() -> APIRouter:
    """A page router as the editor's pages will be: a page with a form that posts back."""
    router = APIRouter()
    notes: list[str] = []

    @router.get("/notes")
    async def show(request: Request, user: SignedIn) -> Response:
        return gateway_state(request).pages.render(request, "notes.html", notes=notes)

    @router.post("/notes")
    async def add(request: Request, user: SignedIn) -> Response:
        form = await request.form()
        notes.append(f"{user.subject}: {form.get('text')}")
        return gateway_state(request).pages.render(request, "notes.html", notes=notes)

    return router


@dataclass(frozen=True)
class SignInIssuer:
    """The development issuer, with a client registered for each gateway origin below."""

    issuer: LocalIssuer
    origins: dict[str, str]


def serve_full_gateway(
    stack: ExitStack, issuer: SignInIssuer, name: str, brokers: dict[str, str], data: Path
) -> FullGateway:
    """A gateway with its editor and execution service (SQLite under ``data``) in front of
    ``brokers``, served until ``stack`` closes."""
    origin = issuer.origins[name]
    settings = gateway_settings(origin, issuer.issuer.issuer)
    assert settings.auth is not None
    editor_settings = EditorSettings(
        database_url=f"sqlite:///{data}/editor.sqlite",
        auth=settings.auth,
        fetch=FetchSettings(timeout=2.0, trusted_origins=[origin]),
    )
    editor = EditorService(
        editor_settings,
        WorkstepStore(Database(editor_settings.database_url)),
        Fetcher(editor_settings.fetch),
        Catalogue.load(),
    )
    execution_settings = ExecutionSettings(
        database_url=f"sqlite:///{data}/execution.sqlite",
        sites=[Site(name=n, url=u) for n, u in brokers.items()],
        auth=settings.auth,
        deadline=3.0,
        max_deadline=10.0,
        late_grace=10.0,
        health_interval=0,
        follow_wait=1.0,
    )
    execution = ExecutionService(execution_settings, build_registry(execution_settings))
    app = create_app(settings, editor=editor, execution=execution)
    served = stack.enter_context(serve_in_thread(app, port=int(origin.rsplit(":", 1)[1])))
    return FullGateway(served, settings, issuer.issuer, brokers)
