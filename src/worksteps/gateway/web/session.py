"""The browser's session: a signed cookie holding a random session id and the access token.

Invariants:

- The session cookie is HttpOnly, SameSite=Lax, Path=/, Secure when the gateway is served over
  https (then also named with the ``__Host-`` prefix, so no other host can set it), signed
  with the cookie secret, and lasts at most ``session_lifetime`` and never beyond its token.
- A session is valid only while its signature verifies, its age is within
  ``session_lifetime`` and its access token still passes :class:`TokenVerifier` (signature,
  issuer, audience, expiry); anything else is no session at all, never a partial one.
- Each sign-in starts a new session id, so a CSRF token or cookie from before does not carry
  over. With ``auth=None`` (dev_mode only) the session names ``dev_user`` and holds no token.
- The sign-in attempt (state, PKCE verifier, where to go next) lives in its own signed cookie
  for ``signin_lifetime`` and is cleared by the callback.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from worksteps.core.auth import Principal, TokenVerifier
from worksteps.core.errors import Unauthorized, Unavailable
from worksteps.gateway.settings import GatewaySettings
from worksteps.gateway.web.signing import CookieSigner

__all__ = ["Sessions", "SignInRequired", "WebSession", "local_path"]


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: its session id (CSRF tokens are bound to it) and its user."""

    sid: str
    principal: Principal


class SignInRequired(Exception):
    """A page needs a session and there is none: the browser is sent to sign in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this gateway (never another host), else ``default``."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 0x20 for c in target)
    ):
        return default
    return target


class Sessions:
    """Reads and writes the session and sign-in cookies; decides who a browser is."""

    def __init__(
        self, settings: GatewaySettings, signer: CookieSigner, verifier: TokenVerifier | None
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.verifier = verifier
        prefix = "__Host-" if settings.secure else ""
        self.cookie = f"{prefix}worksteps_session"
        self.signin_cookie = f"{prefix}worksteps_signin"

    async def read(self, request: Request) -> WebSession | None:
        """The browser's session, or None when it has no valid one."""
        payload = self.signer.loads(
            "session",
            request.cookies.get(self.cookie),
            max_age=self.settings.session_lifetime,
        )
        if payload is None or not isinstance(payload.get("sid"), str):
            return None
        token = payload.get("tok")
        if self.verifier is None:
            if payload.get("sub") != self.settings.dev_user or token:
                return None
            name = self.settings.dev_user
            return WebSession(payload["sid"], Principal(subject=name, name=name))
        if not isinstance(token, str) or not token:
            return None
        try:
            principal = await self.verifier.verify(token)
        except Unauthorized:
            return None
        except Unavailable:
            raise  # the issuer's keys are unreachable: an outage, not a sign-out
        return WebSession(payload["sid"], principal)

    def start(self, response: Response, token: str | None, expires_at: float | None) -> str:
        """Set a new session cookie on ``response``: a fresh session id; returns it."""
        sid = secrets.token_urlsafe(24)
        payload: dict[str, Any] = {"sid": sid}
        if token is None:
            payload["sub"] = self.settings.dev_user
        else:
            payload["tok"] = token
        lifetime = self.settings.session_lifetime
        if expires_at is not None:
            lifetime = min(lifetime, max(0.0, expires_at - time.time()))
        self._set(response, self.cookie, self.signer.dumps("session", payload), lifetime)
        return sid

    def end(self, response: Response) -> None:
        self._clear(response, self.cookie)

    def remember_attempt(
        self, response: Response, state: str, verifier: str, next_path: str
    ) -> None:
        value = self.signer.dumps(
            "signin", {"state": state, "verifier": verifier, "next": next_path}
        )
        self._set(response, self.signin_cookie, value, self.settings.signin_lifetime)

    def attempt(self, request: Request) -> dict[str, Any] | None:
        """The sign-in attempt this browser started (state, verifier, next), if still valid."""
        payload = self.signer.loads(
            "signin",
            request.cookies.get(self.signin_cookie),
            max_age=self.settings.signin_lifetime,
        )
        if payload is None or not all(
            isinstance(payload.get(k), str) for k in ("state", "verifier", "next")
        ):
            return None
        return payload

    def forget_attempt(self, response: Response) -> None:
        self._clear(response, self.signin_cookie)

    def _set(self, response: Response, name: str, value: str, lifetime: float) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(lifetime),
            path="/",
            secure=self.settings.secure,
            httponly=True,
            samesite="lax",
        )

    def _clear(self, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path="/", secure=self.settings.secure, httponly=True, samesite="lax"
        )
