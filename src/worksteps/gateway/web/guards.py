"""Dependencies that guard the web pages: a valid session, and the CSRF token on unsafe forms.

The gateway applies both to every page router it includes, so a page is protected unless it
is deliberately public (sign-in, its callback, the signed-out page, health, static files).
"""

from __future__ import annotations

from fastapi import Request

from worksteps.core.auth import Principal
from worksteps.gateway.web.csrf import SAFE_METHODS, check_csrf
from worksteps.gateway.web.render import web_session
from worksteps.gateway.web.session import SignInRequired, WebSession, local_path
from worksteps.gateway.web.state import gateway_state

__all__ = ["csrf_protected", "signed_in"]


async def signed_in(request: Request) -> Principal:
    """The signed-in user; without a valid session the browser is sent to sign in."""
    session = await _session(request)
    return session.principal


async def csrf_protected(request: Request) -> None:
    """Refuses (403) an unsafe request that lacks the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    session = await _session(request)
    await check_csrf(request, gateway_state(request).sessions.signer, session.sid, form=True)


async def _session(request: Request) -> WebSession:
    session = web_session(request)
    if session is not None:
        return session
    session = await gateway_state(request).sessions.read(request)
    if session is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        # after signing in, come back to the page; a form post cannot be replayed: go home
        raise SignInRequired(local_path(target) if request.method in SAFE_METHODS else "/")
    request.state.web_session = session
    request.state.principal = session.principal
    return session
