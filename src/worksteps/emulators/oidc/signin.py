"""What the development sign-in knows: its users, its clients and its one-time codes.

Invariants:

- A client is public (no secret) and must prove possession of its PKCE verifier (S256 only);
  ``plain`` challenges and requests without a challenge are refused.
- A ``redirect_uri`` is accepted only when its scheme, host and port equal those of one of the
  client's allowed prefixes and its path lies under the prefix's path (segment by segment), with
  no fragment and no user information: ``http://127.0.0.1:8080.evil.org/`` does not pass as
  ``http://127.0.0.1:8080/``.
- A code is redeemed at most once: the first redemption attempt consumes it, whether or not the
  verifier is right, so a stolen code cannot be tried against many verifiers. Codes live
  ``code_lifetime`` seconds and the store never holds more than ``max_codes``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

__all__ = [
    "AuthorizationCodes",
    "CodeGrant",
    "DevUser",
    "OidcClient",
    "RedemptionRefused",
    "SignInConfig",
    "redirect_allowed",
    "s256",
    "valid_challenge",
]

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


class DevUser(BaseModel):
    """A user who may sign in with a click (no password: this issuer is for development)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,30}$", description="The subject (`sub`).")
    display: str = Field("", max_length=100, description="Shown on the sign-in page.")
    roles: list[str] = Field(default_factory=list, description="The token's `roles` claim.")

    @property
    def label(self) -> str:
        return self.display or self.name


class OidcClient(BaseModel):
    """A relying party: its id, where it may be sent back to, and its tokens' audience."""

    client_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    name: str = Field("", max_length=100, description="Shown on the sign-in page.")
    redirect_prefixes: list[str] = Field(
        default_factory=list,
        description="Allowed redirect URIs: scheme://host:port/path prefixes (a public "
        "client needs one at least).",
    )
    audience: str = Field("worksteps", description="The access token's `aud`.")
    secret: SecretStr | None = Field(
        None,
        description="A confidential client (a service): it may use the client-credentials "
        "grant with this secret, and gets a token for itself, not for a user.",
    )
    service_roles: list[str] = Field(
        default_factory=list, description="The `roles` of a confidential client's own tokens."
    )
    loopback_any_port: bool = Field(
        False,
        description="A native app (the CLI): a prefix on http://127.0.0.1 or http://[::1] "
        "admits any port, as RFC 8252 §7.3 asks of servers.",
    )

    @model_validator(mode="after")
    def _prefixes_are_urls(self) -> OidcClient:
        if not self.redirect_prefixes and self.secret is None:
            raise ValueError("a public client needs at least one redirect prefix")
        for prefix in self.redirect_prefixes:
            parts = urlsplit(prefix)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"redirect prefix {prefix!r} is not an http(s) URL")
            if parts.query or parts.fragment or parts.username or parts.password:
                raise ValueError(f"redirect prefix {prefix!r} has a query, fragment or user")
        return self


class SignInConfig(BaseModel):
    """The sign-in half of the issuer: who may sign in, to which clients, for how long."""

    users: list[DevUser] = Field(default_factory=list)
    clients: list[OidcClient] = Field(default_factory=list)
    code_lifetime: float = Field(60.0, gt=0, le=600, description="Seconds a code stays valid.")
    token_lifetime: float = Field(3600.0, gt=0, le=86_400, description="Access token, seconds.")
    max_codes: int = Field(10_000, ge=1, le=1_000_000, description="Codes outstanding at most.")
    production: bool = Field(
        False, description="True refuses to start: password-less sign-in is for development."
    )

    @model_validator(mode="after")
    def _unique(self) -> SignInConfig:
        if len({u.name for u in self.users}) != len(self.users):
            raise ValueError("user names must be unique")
        if len({c.client_id for c in self.clients}) != len(self.clients):
            raise ValueError("client ids must be unique")
        return self

    def user(self, name: str) -> DevUser | None:
        return next((u for u in self.users if u.name == name), None)

    def client(self, client_id: str) -> OidcClient | None:
        return next((c for c in self.clients if c.client_id == client_id), None)


def redirect_allowed(client: OidcClient, redirect_uri: str) -> bool:
    """True when ``redirect_uri`` lies under one of ``client``'s prefixes (see module doc)."""
    try:
        target = urlsplit(redirect_uri)
        target_port = target.port
    except ValueError:
        return False
    if target.fragment or target.username or target.password or "\\" in redirect_uri:
        return False
    for prefix in client.redirect_prefixes:
        allowed = urlsplit(prefix)
        any_port = (
            client.loopback_any_port
            and allowed.scheme == "http"
            and allowed.hostname in ("127.0.0.1", "::1")
        )
        if (target.scheme, target.hostname) != (allowed.scheme, allowed.hostname):
            continue
        if target_port != allowed.port and not any_port:
            continue
        base = allowed.path.rstrip("/")
        if not base or target.path == base or target.path.startswith(base + "/"):
            return True
    return False


def s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.match(challenge))


@dataclass(frozen=True)
class CodeGrant:
    """What a code was issued for; redeeming it must present the same client and redirect."""

    client_id: str
    redirect_uri: str
    challenge: str
    user: str
    scope: str
    nonce: str | None
    expires: float


class RedemptionRefused(Exception):
    """The code, client, redirect or verifier does not match: OAuth2 ``invalid_grant``."""


class AuthorizationCodes:
    """One-time codes kept in memory (a development issuer's sign-ins need not survive it)."""

    def __init__(self, lifetime: float, limit: int, clock: Callable[[], float]) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self.clock = clock
        self._grants: dict[str, CodeGrant] = {}

    def issue(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        challenge: str,
        user: str,
        scope: str,
        nonce: str | None,
    ) -> str | None:
        """A new code, or None when too many are outstanding."""
        now = self.clock()
        for code in [c for c, g in self._grants.items() if g.expires <= now]:
            del self._grants[code]
        if len(self._grants) >= self.limit:
            return None
        code = secrets.token_urlsafe(32)
        self._grants[code] = CodeGrant(
            client_id, redirect_uri, challenge, user, scope, nonce, now + self.lifetime
        )
        return code

    def redeem(self, code: str, *, client_id: str, redirect_uri: str, verifier: str) -> CodeGrant:
        """The grant of ``code``, consumed; :class:`RedemptionRefused` when anything is off."""
        grant = self._grants.pop(code, None)
        if grant is None:
            raise RedemptionRefused("The code is unknown, already used or expired.")
        if grant.expires <= self.clock():
            raise RedemptionRefused("The code has expired.")
        if grant.client_id != client_id:
            raise RedemptionRefused("The code was issued to another client.")
        if grant.redirect_uri != redirect_uri:
            raise RedemptionRefused("The redirect_uri differs from the authorization request's.")
        if not _VERIFIER.match(verifier) or not hmac.compare_digest(
            s256(verifier), grant.challenge
        ):
            raise RedemptionRefused("The code_verifier does not match the code_challenge.")
        return grant
