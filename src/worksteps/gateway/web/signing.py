"""Signed, timestamped cookie values: HMAC-SHA256 over a small JSON document.

A value is ``base64url(json).base64url(mac)``; the key is derived from the cookie secret and a
purpose ("session", "signin", "csrf"), so a value signed for one purpose never passes as
another. Values are signed, not encrypted: they must hold nothing the browser's user may not
read (the session holds the user's own access token, and the cookie is HttpOnly).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CookieSigner"]

_CLOCK_SKEW = 60.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieSigner:
    """Signs and checks values for each purpose with keys derived from one secret."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode("utf-8")
        self._clock = clock

    def key(self, purpose: str) -> bytes:
        return hmac.new(self._secret, b"worksteps-gateway/" + purpose.encode(), "sha256").digest()

    def mac(self, purpose: str, message: str) -> str:
        """An HMAC of ``message`` under the key of ``purpose``, base64url."""
        return _b64(hmac.new(self.key(purpose), message.encode("utf-8"), hashlib.sha256).digest())

    def dumps(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(
            json.dumps({**payload, "iat": int(self._clock())}, separators=(",", ":")).encode()
        )
        return f"{body}.{self.mac(purpose, body)}"

    def loads(self, purpose: str, value: str | None, *, max_age: float) -> dict[str, Any] | None:
        """The payload of a value signed for ``purpose`` at most ``max_age`` s ago, else None."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac.encode(), self.mac(purpose, body).encode()):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("iat"), int):
            return None
        age = self._clock() - payload["iat"]
        if age > max_age or age < -_CLOCK_SKEW:
            return None
        return payload
