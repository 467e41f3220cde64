"""Who calls the gateway's JSON API (``/api``): a bearer token, or the browser's session.

A request with ``Authorization: Bearer …`` is checked against the issuer (the CLI and Python
client). Otherwise the session cookie counts, and an unsafe method must also carry the
session's CSRF token in ``X-CSRF-Token`` (the pages' JavaScript does). Anything else: 401.

An instance is the ``authenticate`` dependency handed to the editor's and execution's
routers, so they need not know about cookies.
"""

from __future__ import annotations

from fastapi import Request

from worksteps.core.auth import Principal, TokenVerifier, bearer_token
from worksteps.core.errors import Unauthorized
from worksteps.gateway.settings import GatewaySettings
from worksteps.gateway.web.csrf import check_csrf
from worksteps.gateway.web.session import Sessions
from worksteps.gateway.web.signing import CookieSigner

__all__ = ["GatewayAuthenticator"]


class GatewayAuthenticator:
    """``Depends(authenticator)``: the caller's :class:`Principal`, or 401 (403 on CSRF)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.verifier = TokenVerifier(settings.auth) if settings.auth is not None else None
        signer = CookieSigner(settings.cookie_secret.get_secret_value())
        self.sessions = Sessions(settings, signer, self.verifier)

    async def __call__(self, request: Request) -> Principal:
        token = bearer_token(request)
        if token is not None:
            if self.verifier is None:
                raise Unauthorized()
            principal = await self.verifier.verify(token)
        else:
            session = await self.sessions.read(request)
            if session is None:
                raise Unauthorized()
            await check_csrf(request, self.sessions.signer, session.sid, form=False)
            principal = session.principal
        request.state.principal = principal
        return principal
