"""The Science Gateway application: sign-in, the web pages and the user API under ``/api``.

Given the Workstep Editor's and the execution service's service objects, the gateway mounts
their JSON routers under ``/api`` (authenticated by the gateway), adds their pages, and starts
and closes them in its own lifespan.

Public: ``/healthz``, ``/docs`` and ``/openapi.json``, ``/static``, the sign-in routes and the
signed-out page. Every other page requires a session (else 303 to ``/signin``) and a CSRF
token on unsafe methods (else 403); every ``/api`` route is given ``authenticator`` (bearer
token, or session cookie plus ``X-CSRF-Token``; else 401 problem JSON).
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from worksteps.core.auth import Principal
from worksteps.core.docs import docs_app_options, install_docs
from worksteps.core.openapi import document_problems
from worksteps.editor.api import editor_router
from worksteps.editor.service import EditorService
from worksteps.execution.api import execution_router
from worksteps.execution.service import ExecutionService
from worksteps.gateway.access import GatewayAuthenticator
from worksteps.gateway.settings import GatewaySettings
from worksteps.gateway.web.errors import install_error_pages
from worksteps.gateway.web.executions import execution_pages
from worksteps.gateway.web.guards import csrf_protected, signed_in
from worksteps.gateway.web.pages import home_router
from worksteps.gateway.web.relying_party import RelyingParty
from worksteps.gateway.web.render import NavLink, Pages
from worksteps.gateway.web.signin import signin_router
from worksteps.gateway.web.state import GatewayState
from worksteps.gateway.web.worksteps import workstep_pages

__all__ = ["create_app"]

STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    settings: GatewaySettings,
    *,
    authenticator: GatewayAuthenticator | None = None,
    editor: EditorService | None = None,
    execution: ExecutionService | None = None,
    routers: Sequence[APIRouter] = (),
    pages: Sequence[APIRouter] = (),
    nav: Sequence[NavLink] = (),
    templates: Sequence[Path] = (),
) -> FastAPI:
    """The gateway.

    ``editor`` and ``execution`` (not started) are mounted with their pages and started by the
    gateway's lifespan. Other ``routers`` are JSON API routers mounted under ``/api``; build
    them with the same ``authenticator``. ``pages`` are web page routers mounted at the root
    behind the session and CSRF guards; their templates live in ``templates`` folders
    (searched before the gateway's own, so they may extend ``base.html``) and ``nav`` lists
    them in the header.
    """
    authenticator = authenticator or GatewayAuthenticator(settings)
    api_url = f"{settings.origin}/api"
    routers, pages, nav = list(routers), list(pages), list(nav)
    if editor is not None:
        editor_url = (editor.settings.public_url or api_url).rstrip("/")
        routers.append(editor_router(editor, authenticator))
        pages.append(workstep_pages(editor, execution, editor_url=editor_url))
        nav.append(NavLink("Worksteps", "/worksteps"))
    if execution is not None:
        routers.append(execution_router(execution, authenticator))
        pages.append(execution_pages(execution, editor, api_url=api_url))
        nav.append(NavLink("Sessions", "/executions"))
    relying_party = None
    if settings.auth is not None:
        relying_party = RelyingParty(
            settings.auth,
            settings.client_id,
            settings.callback_url,
            settings.scope,
            settings.http_timeout,
        )
    state = GatewayState(
        settings=settings,
        sessions=authenticator.sessions,
        pages=Pages(authenticator.sessions.signer, nav, templates),
        relying_party=relying_party,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if editor is not None:
            await editor.store.migrate()
        if execution is not None:
            await execution.start()
        # Start-up is not frozen here (freeze_start_up), unlike the standalone services: with
        # 1,000 event streams open, what the streams hold makes up most of the heap, and once
        # start-up's objects no longer count the collector's full passes over the streams come
        # several times as often (bench/load (b): notification p99 535-710 ms frozen, 276-282
        # ms not).
        try:
            yield
        finally:
            if execution is not None:
                await execution.aclose()
            if editor is not None:
                await editor.fetcher.aclose()
                await editor.store.db.dispose()

    app = FastAPI(
        title="Worksteps Science Gateway",
        lifespan=lifespan,
        version="1.0",
        summary="Sign in, describe a workstep, compare the sites' offers, start a session.",
        **docs_app_options(),
    )
    install_docs(app)
    document_problems(app)
    app.state.gateway = state
    install_error_pages(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(signin_router())
    guarded = [Depends(signed_in), Depends(csrf_protected)]
    for router in (home_router(), *pages):
        app.include_router(router, dependencies=guarded)

    app.include_router(_me_router(authenticator, settings), prefix="/api")
    for router in routers:
        app.include_router(router, prefix="/api")
    return app


def _me_router(authenticator: GatewayAuthenticator, settings: GatewaySettings) -> APIRouter:
    router = APIRouter(tags=["account"])
    caller = Annotated[Principal, Depends(authenticator)]

    @router.get("/auth", summary="Where to sign in (public): the issuer and the CLI's client")
    async def auth() -> dict[str, Any]:
        if settings.auth is None:
            return {"issuer": None, "client_id": None}
        return {"issuer": settings.auth.issuer, "client_id": settings.cli_client_id}

    @router.get("/me", summary="Who the caller is")
    async def me(principal: caller) -> dict[str, Any]:
        return {
            "subject": principal.subject,
            "name": principal.name,
            "roles": sorted(principal.roles),
            "admin": principal.admin,
        }

    return router
