"""Who is calling and what they may pull: Harbor accounts, basic/bearer auth, registry tokens.

The REST API takes HTTP basic credentials or a configured OIDC-style bearer token; anonymous
callers see public projects only. The OCI API (``/v2/``) takes basic credentials or a token
from ``/service/token``; anonymous requests get the Bearer challenge. Tokens grant only what
the caller may do (pull on readable repositories, the catalog for administrators) and expire.
The emulator is read-only, so ``push`` and ``delete`` are never granted.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from worksteps.emulators.harbor.config import HarborConfig, ProjectSpec

__all__ = ["SERVICE", "Accounts", "Grant", "Principal", "TokenService", "parse_scope"]

SERVICE = "harbor-registry"


@dataclass(frozen=True)
class Principal:
    """An authenticated account, or the anonymous caller (``name`` None)."""

    name: str | None
    admin: bool = False
    via_token: bool = False

    @property
    def anonymous(self) -> bool:
        return self.name is None


ANONYMOUS = Principal(None)


class Accounts:
    """Checks credentials and project read permission against the configuration."""

    def __init__(self, config: HarborConfig) -> None:
        self._users = {user.name: user for user in config.users}
        self._bearer = dict(config.bearer_tokens)

    def authenticate(self, authorization: str | None, *, bearer: bool = True) -> Principal | None:
        """The caller named by an ``Authorization`` header; None when credentials are wrong.

        ``bearer`` allows configured OIDC bearer tokens (REST API); registry tokens are
        checked by :class:`TokenService` instead.
        """
        if not authorization:
            return ANONYMOUS
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            account = self._users.get(user)
            if account is None or not secrets.compare_digest(account.password, password):
                return None
            return Principal(account.name, account.admin)
        if scheme.lower() == "bearer" and bearer:
            name = next(
                (n for t, n in self._bearer.items() if secrets.compare_digest(t, value)), None
            )
            if name is None:
                return None
            return Principal(name, self._users[name].admin, via_token=True)
        return None

    @staticmethod
    def can_read(principal: Principal, project: ProjectSpec) -> bool:
        """Pull and read metadata: public projects for all, private ones for members/admins."""
        return project.public or principal.admin or principal.name in project.members


def parse_scope(scope: str) -> tuple[str, str, set[str]] | None:
    """``repository:library/ubuntu:pull,push`` -> (type, name, actions); None if malformed."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name or not actions:
        return None
    return kind, name, {a for a in actions.split(",") if a}


@dataclass
class Grant:
    """What one registry token allows, until when."""

    subject: str | None
    expires_at: float
    access: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def allows(self, kind: str, name: str, action: str) -> bool:
        actions = self.access.get((kind, name), set())
        return action in actions or "*" in actions


class TokenService:
    """Issues and checks registry tokens (opaque random strings held in memory)."""

    def __init__(
        self,
        config: HarborConfig,
        accounts: Accounts,
        project: Callable[[str], ProjectSpec | None],
    ) -> None:
        self._lifetime = config.token_lifetime
        self._project = project
        self._accounts = accounts
        self._grants: dict[str, Grant] = {}

    def issue(self, principal: Principal, scopes: list[str], now: float) -> tuple[str, Grant]:
        """A token for ``principal`` granting the requested scopes it is entitled to."""
        grant = Grant(principal.name, now + self._lifetime)
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, wanted = parsed
            allowed = self.entitled(principal, kind, name)
            granted = allowed if "*" in wanted else wanted & allowed
            if granted:
                grant.access.setdefault((kind, name), set()).update(granted)
        token = secrets.token_urlsafe(32)
        self._grants = {t: g for t, g in self._grants.items() if g.expires_at > now}
        self._grants[token] = grant
        return token, grant

    def entitled(self, principal: Principal, kind: str, name: str) -> set[str]:
        if kind == "registry" and name == "catalog":
            return {"*"} if principal.admin else set()
        if kind == "repository":
            project = self._project(name.split("/", 1)[0])
            if project is not None and "/" in name and self._accounts.can_read(principal, project):
                return {"pull"}
        return set()

    def check(self, token: str, now: float) -> Grant | None:
        grant = self._grants.get(token)
        if grant is None or grant.expires_at <= now:
            return None
        return grant

    @property
    def lifetime(self) -> int:
        return self._lifetime
