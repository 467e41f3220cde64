"""Signing in and out: the public routes of the authorization-code flow.

    GET  /signin            new attempt (state + PKCE verifier in a signed cookie) -> issuer
    GET  /signin/callback   state checked, code exchanged, token verified -> session cookie
    POST /signout           (CSRF token required while signed in) -> /signed-out
    GET  /signed-out        a public page with a way back in

A failed callback shows a page that says what to do (sign in again) and never why a token was
refused in detail; nothing of the failed attempt is kept.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from worksteps.core.errors import Unauthorized
from worksteps.gateway.web.csrf import check_csrf
from worksteps.gateway.web.relying_party import SignInFailed
from worksteps.gateway.web.session import local_path
from worksteps.gateway.web.state import GatewayState, gateway_state

__all__ = ["signin_router"]

log = logging.getLogger(__name__)


def signin_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/signin", name="signin")
    async def signin(request: Request, next: str = "/") -> Response:
        state = gateway_state(request)
        target = local_path(next)
        response = RedirectResponse(target, status_code=303)
        if state.relying_party is None:  # sign-in is off: everyone is dev_user
            state.sessions.start(response, None, None)
            return response
        attempt = await state.relying_party.begin()
        response = RedirectResponse(attempt.url, status_code=303)
        state.sessions.remember_attempt(response, attempt.state, attempt.verifier, target)
        return response

    @router.get("/signin/callback", name="signin_callback")
    async def callback(
        request: Request,
        code: str = "",
        state: str = "",
        error: str = "",
    ) -> Response:
        gateway = gateway_state(request)
        attempt = gateway.sessions.attempt(request)
        if attempt is None or not hmac.compare_digest(attempt["state"].encode(), state.encode()):
            return _failed(
                request,
                gateway,
                "This sign-in has expired or was started in another window.",
            )
        if error or not code:
            cancelled = error == "access_denied"
            message = "Sign-in was cancelled." if cancelled else "The sign-in did not complete."
            return _failed(request, gateway, message)
        assert gateway.relying_party is not None and gateway.sessions.verifier is not None
        try:
            token = await gateway.relying_party.exchange(code, attempt["verifier"])
            principal = await gateway.sessions.verifier.verify(token)
        except (SignInFailed, Unauthorized):
            return _failed(request, gateway, "The identity provider did not confirm who you are.")
        response = RedirectResponse(attempt["next"], status_code=303)
        gateway.sessions.start(response, token, _expiry(token))
        gateway.sessions.forget_attempt(response)
        log.info("signed in: %s", principal.subject)
        return response

    @router.post("/signout", name="signout")
    async def signout(request: Request) -> Response:
        gateway = gateway_state(request)
        session = await gateway.sessions.read(request)
        if session is not None:  # a live session is only ended by its own pages
            await check_csrf(request, gateway.sessions.signer, session.sid, form=True)
        response = RedirectResponse(request.url_for("signed_out").path, status_code=303)
        gateway.sessions.end(response)
        return response

    @router.get("/signed-out", name="signed_out")
    async def signed_out(request: Request) -> Response:
        return gateway_state(request).pages.render(request, "signed_out.html")

    return router


def _failed(request: Request, gateway: GatewayState, message: str) -> Response:
    response = gateway.pages.render(request, "signin_failed.html", status=400, message=message)
    gateway.sessions.forget_attempt(response)
    return response


def _expiry(token: str) -> float | None:
    """The ``exp`` of an already verified JWT (to bound the session cookie's lifetime)."""
    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        exp = claims.get("exp")
    except (IndexError, ValueError, binascii.Error, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None
