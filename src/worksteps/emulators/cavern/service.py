"""The state one emulated Cavern shares between its routes: tree, jobs, identity, signing.

Identity: ``Authorization: Bearer <token>`` (or the ``X-CADC-DelegationToken`` header the
``vos`` client also sends) names a user through ``config.tokens``; no token is anonymous; an
unknown token is ``NotAuthenticated`` (401). Pre-authorised URLs carry an HMAC-signed grant
(job, user, node, direction, expiry) instead, as Cavern's ``preauth:`` URLs do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from .config import CavernConfig
from .errors import VOSpaceFault
from .jobs import JobBoard
from .paths import NodePath, parse_path
from .transfers import JobRunner
from .tree import NodeTree

__all__ = ["CavernService", "Grant", "form_fields", "handles_faults"]

Handler = Callable[[Request], Awaitable[Response]]


def handles_faults(handler: Handler) -> Handler:
    """Answer a :class:`VOSpaceFault` raised by ``handler`` the way cadc-rest does."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except VOSpaceFault as fault:
            return fault.response()

    return wrapped


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only form UWS clients send)."""
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError:
        raise VOSpaceFault("InvalidArgument", "form body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


@dataclass(frozen=True)
class Grant:
    """What a pre-authorised URL allows: one direction on one node, for one user and job."""

    job: str
    user: str
    path: str
    direction: str  # "get" or "put"
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CavernService:
    def __init__(self, config: CavernConfig) -> None:
        self.config = config
        self.tree = NodeTree(config)
        self.runner = JobRunner(config, self.tree)
        self.board = JobBoard(config.concurrent_transfers, self.runner)
        self._secret = secrets.token_bytes(32)

    def base_url(self, request: Request) -> str:
        """Absolute URL of the service root as this client reached it (no trailing slash)."""
        return str(request.base_url).rstrip("/") + self.config.path_prefix

    def caller(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        token = token or request.headers.get("x-cadc-delegationtoken", "").strip()
        if not token:
            return None
        user = self.config.tokens.get(token)
        if user is None:
            raise VOSpaceFault("NotAuthenticated", "invalid or expired token")
        if self.config.create_homes:
            self.tree.ensure_home(user)
        return user

    def node_path(self, request: Request) -> NodePath:
        return parse_path("/" + str(request.path_params.get("path", "")))

    # -- pre-authorised URLs ------------------------------------------------------------------

    def sign(self, grant: Grant) -> str:
        payload = json.dumps(
            [grant.job, grant.user, grant.path, grant.direction, grant.expires]
        ).encode()
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(mac)}"

    def verify(self, token: str, path: NodePath, direction: str) -> Grant:
        """The grant behind ``token`` if it is genuine, unexpired and covers this call."""
        try:
            payload_text, mac_text = token.split(".", 1)
            payload = _unb64(payload_text)
            expected = hmac.new(self._secret, payload, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(mac_text)):
                raise ValueError("bad signature")
            job, user, grant_path, grant_direction, expires = json.loads(payload)
            grant = Grant(str(job), str(user), str(grant_path), str(grant_direction), expires)
        except (ValueError, TypeError):
            raise VOSpaceFault("PermissionDenied", "invalid pre-authorised URL") from None
        if grant.expires < time.time():
            raise VOSpaceFault("PermissionDenied", "pre-authorised URL expired")
        if grant.path != path.path or grant.direction != direction:
            raise VOSpaceFault("PermissionDenied", "pre-authorised URL does not cover this call")
        return grant
