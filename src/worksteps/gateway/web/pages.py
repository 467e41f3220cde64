"""The gateway's own signed-in pages; the editor's and execution's pages join beside them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from worksteps.core.auth import Principal
from worksteps.gateway.web.guards import signed_in
from worksteps.gateway.web.state import gateway_state

__all__ = ["home_router"]


def home_router() -> APIRouter:
    """``/``: the signed-in user's start page (guards come from the app, see ``create_app``)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", name="home")
    async def home(request: Request, user: Annotated[Principal, Depends(signed_in)]) -> Response:
        state = gateway_state(request)
        return state.pages.render(request, "home.html", sections=state.pages.nav)

    return router
