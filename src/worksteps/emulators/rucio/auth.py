"""Rucio tokens: ``/auth/userpass`` issues them, every other call presents one.

Tokens live in memory only. After an emulator restart clients present unknown tokens, get 401
``CannotAuthenticate`` and (rucio-clients does this by itself) authenticate again, exactly as
after a real token expiry.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from worksteps.emulators.rucio.config import RucioConfig
from worksteps.emulators.rucio.rules import RucioError

__all__ = ["Token", "TokenStore"]


@dataclass(frozen=True)
class Token:
    value: str
    account: str
    identity: str
    expires_at: float | None


class TokenStore:
    """Issues and validates tokens for the identities of one emulated Rucio."""

    def __init__(self, config: RucioConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self._tokens: dict[str, Token] = {
            value: Token(value, account, "oidc", None)
            for value, account in config.bearer_tokens.items()
        }
        self._lock = threading.Lock()

    def userpass(self, account: str | None, username: str, password: str) -> Token:
        matches = [
            i
            for i in self.config.identities
            if i.username == username
            and secrets.compare_digest(i.password, password)
            and account in (None, i.account)
        ]
        if not matches:
            who = f"account {account}" if account else f"identity {username}"
            raise RucioError(
                "CannotAuthenticate", f"Cannot authenticate to {who} with given credentials", 401
            )
        identity = matches[0]
        value = f"{identity.account}-{username}-unknown-{secrets.token_hex(16)}"
        token = Token(value, identity.account, username, self.clock() + self.config.token_lifetime)
        with self._lock:
            self._tokens[value] = token
        return token

    def validate(self, value: str | None) -> Token:
        with self._lock:
            token = self._tokens.get(value or "")
            if (
                token is not None
                and token.expires_at is not None
                and token.expires_at <= self.clock()
            ):
                del self._tokens[token.value]
                token = None
        if token is None:
            raise RucioError(
                "CannotAuthenticate", "Cannot authenticate with given credentials", 401
            )
        return token
