"""Who is calling: OIDC bearer tokens (JWTs) checked against the issuer's published keys.

Invariants:

- A token is accepted only when its signature verifies with a key of the issuer's JWKS, ``iss``
  is the configured issuer, ``aud`` names the configured audience, ``exp`` is in the future and
  ``nbf`` (when present) has passed, both with a small leeway, and ``sub`` is present.
- Every refusal is :class:`~worksteps.core.errors.Unauthorized` with one fixed detail: why the
  token was refused goes to the log, never to the caller, and the token itself goes nowhere.
- The JWKS is fetched from the issuer's discovery document (or ``jwks_url``) on first use and
  again when a token names a key id it does not hold, at most once per ``jwks_refresh``
  seconds, so a rotated key is picked up and a flood of forged key ids costs nothing.
- Roles come from one claim (``roles``, a list of strings); ``admin`` may see everything.
  Ownership is decided by :meth:`Principal.may_see`: the subject, or an admin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, Field

from worksteps.core.errors import Unauthorized, Unavailable

__all__ = ["AuthSettings", "Authenticator", "Principal", "TokenVerifier", "bearer_token"]

log = logging.getLogger(__name__)


class AuthSettings(BaseModel):
    """How a service checks the bearer tokens it is given."""

    issuer: str = Field(description="The OIDC issuer URL (the tokens' `iss`).")
    audience: str = Field("worksteps", description="The `aud` every token must name.")
    jwks_url: str | None = Field(
        None, description="The issuer's JWKS; default: from its discovery document."
    )
    algorithms: list[str] = Field(["RS256", "ES256"], description="Signature algorithms.")
    leeway: int = Field(30, ge=0, le=300, description="Clock skew allowed, in seconds.")
    roles_claim: str = Field("roles", description="Claim holding the list of roles.")
    admin_role: str = Field("admin", description="Role that may see every user's work.")
    jwks_refresh: float = Field(
        30.0, ge=0, le=3600, description="Least seconds between two JWKS fetches."
    )


@dataclass(frozen=True)
class Principal:
    """The caller: its subject, display name and roles; ``token`` to pass it on downstream."""

    subject: str
    name: str
    roles: frozenset[str] = frozenset()
    admin: bool = False
    token: str = field(default="", repr=False, compare=False)

    def may_see(self, owner: str) -> bool:
        """True when this caller owns the thing or is an admin."""
        return self.admin or owner == self.subject

    @property
    def authorization(self) -> dict[str, str]:
        """The header that passes this caller's identity on to another service."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class TokenVerifier:
    """Checks tokens of one issuer; safe to share between the requests of one event loop."""

    def __init__(self, settings: AuthSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`Unauthorized` for anything else."""
        try:
            header_kid = _kid(token)
            keys = await self._key_set(header_kid)
            decoded = jwt.decode(token, keys, algorithms=self.settings.algorithms)
            self._check_claims(decoded.claims)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            log.info("bearer token refused: %s", type(exc).__name__)
            raise Unauthorized() from None
        claims = decoded.claims
        roles = frozenset(
            r for r in claims.get(self.settings.roles_claim) or [] if isinstance(r, str)
        )
        name = claims.get("preferred_username") or claims.get("name") or claims["sub"]
        return Principal(
            subject=str(claims["sub"]),
            name=str(name),
            roles=roles,
            admin=self.settings.admin_role in roles,
            token=token,
        )

    def _check_claims(self, claims: dict[str, Any]) -> None:
        registry = jwt.JWTClaimsRegistry(
            leeway=self.settings.leeway,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(claims)
        roles = claims.get(self.settings.roles_claim, [])
        if not isinstance(roles, list):
            raise ValueError("roles claim is not a list")

    async def _key_set(self, kid: str | None) -> KeySet:
        keys = self._keys
        if keys is not None and (kid is None or _holds(keys, kid)):
            return keys
        async with self._lock:
            keys = self._keys
            if keys is not None and (kid is None or _holds(keys, kid)):
                return keys
            if (
                keys is not None
                and time.monotonic() - self._fetched_at < self.settings.jwks_refresh
            ):
                raise ValueError("unknown key id")
            self._keys = keys = await self._fetch()
            self._fetched_at = time.monotonic()
            return keys

    async def _fetch(self) -> KeySet:
        client = self._client or httpx.AsyncClient(timeout=10.0)
        try:
            url = self.settings.jwks_url
            if url is None:
                discovery = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
                answer = await client.get(discovery)
                answer.raise_for_status()
                url = str(answer.json()["jwks_uri"])
            answer = await client.get(url)
            answer.raise_for_status()
            return KeySet.import_key_set(answer.json())
        except (httpx.HTTPError, KeyError, ValueError, JoseError) as exc:
            log.warning("cannot fetch the issuer's keys from %s: %s", self.settings.issuer, exc)
            raise Unavailable(
                "The identity provider's keys cannot be fetched; try again later.",
                reason="identity-provider-unavailable",
            ) from None
        finally:
            if self._client is None:
                await client.aclose()


def _kid(token: str) -> str | None:
    from joserfc.jws import extract_compact

    kid = extract_compact(token.encode("ascii")).headers().get("kid")
    return kid if isinstance(kid, str) else None


def _holds(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def bearer_token(request: Request, cookie: str | None = None) -> str | None:
    """The bearer token of a request: the Authorization header, else the named cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if cookie is not None:
        return request.cookies.get(cookie) or None
    return None


class Authenticator:
    """A FastAPI dependency: the :class:`Principal` of the request, or 401.

    ``Depends(authenticator)`` on every non-public route; the principal is also left in
    ``request.state.principal`` for logging (subject only).
    """

    def __init__(self, verifier: TokenVerifier, *, cookie: str | None = None) -> None:
        self.verifier = verifier
        self.cookie = cookie

    async def __call__(self, request: Request) -> Principal:
        token = bearer_token(request, self.cookie)
        if token is None:
            raise Unauthorized()
        principal = await self.verifier.verify(token)
        request.state.principal = principal
        return principal
