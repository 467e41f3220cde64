"""The gateway as an OIDC relying party: discovery, the authorization URL with PKCE, the code
exchange. It is a public client (no secret): PKCE S256 and ``state`` protect the exchange.

Errors: :class:`~worksteps.core.errors.Unavailable` when the issuer cannot be reached or its
discovery document is unusable; :class:`SignInFailed` when it refuses the code.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from worksteps.core.auth import AuthSettings
from worksteps.core.errors import Unavailable, WorkstepsError

__all__ = ["Endpoints", "RelyingParty", "SignInAttempt", "SignInFailed"]

log = logging.getLogger(__name__)
_DISCOVERY_TTL = 3600.0


class SignInFailed(WorkstepsError):
    """The issuer refused the code (expired, reused, wrong verifier) or sent a bad token."""

    status = 400
    title = "Sign-in failed"


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


@dataclass(frozen=True)
class SignInAttempt:
    """One sign-in in flight: kept (signed) in the browser until the callback."""

    state: str
    verifier: str
    url: str


class RelyingParty:
    """Talks to one issuer on behalf of one client id."""

    def __init__(
        self, auth: AuthSettings, client_id: str, redirect_uri: str, scope: str, timeout: float
    ) -> None:
        self.auth = auth
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.timeout = timeout
        self._endpoints: Endpoints | None = None
        self._fetched_at = float("-inf")

    async def endpoints(self) -> Endpoints:
        """The issuer's authorization and token endpoints, from its discovery document."""
        if self._endpoints is not None and time.monotonic() - self._fetched_at < _DISCOVERY_TTL:
            return self._endpoints
        url = self.auth.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                answer = await client.get(url)
                answer.raise_for_status()
                doc = answer.json()
            endpoints = Endpoints(str(doc["authorization_endpoint"]), str(doc["token_endpoint"]))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("cannot read the issuer's discovery document %s: %s", url, exc)
            raise Unavailable(
                "The identity provider cannot be reached; try again later.",
                reason="identity-provider-unavailable",
            ) from None
        self._endpoints, self._fetched_at = endpoints, time.monotonic()
        return endpoints

    async def begin(self) -> SignInAttempt:
        """A new attempt: fresh state and PKCE verifier, and where to send the browser."""
        endpoints = await self.endpoints()
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)  # 64 characters of the unreserved set
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": state,
                "code_challenge": _s256(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in endpoints.authorization else "?"
        return SignInAttempt(state, verifier, f"{endpoints.authorization}{separator}{query}")

    async def exchange(self, code: str, verifier: str) -> str:
        """The access token the issuer gives for ``code``; :class:`SignInFailed` if refused."""
        endpoints = await self.endpoints()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                answer = await client.post(endpoints.token, data=form)
        except httpx.HTTPError as exc:
            log.warning("token endpoint %s unreachable: %s", endpoints.token, exc)
            raise Unavailable(
                "The identity provider cannot be reached; try again later.",
                reason="identity-provider-unavailable",
            ) from None
        try:
            body = answer.json()
        except ValueError:
            body = {}
        token = body.get("access_token") if isinstance(body, dict) else None
        if answer.status_code != 200 or not isinstance(token, str):
            error = body.get("error") if isinstance(body, dict) else None
            log.info("issuer refused the code: %s %s", answer.status_code, error)
            raise SignInFailed(
                "The identity provider did not accept this sign-in; please sign in again.",
                reason="signin-refused",
            )
        return token


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
