"""The signing half of the local issuer: one RSA key (kept as a JWK file) and its tokens."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

__all__ = ["LocalIssuer"]


class LocalIssuer:
    """Issues tokens as ``issuer`` (its URL); ``key_file`` keeps the key across restarts."""

    def __init__(self, issuer: str, *, key_file: Path | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self._key = _load_or_make(key_file)

    @property
    def kid(self) -> str:
        return str(self._key.kid)

    def jwks(self) -> dict[str, Any]:
        """The public key set, as served at ``/jwks``."""
        return dict(KeySet([self._key]).as_dict(private=False))

    def mint(
        self,
        subject: str,
        *,
        audience: str = "worksteps",
        roles: Iterable[str] = (),
        name: str | None = None,
        lifetime: float = 3600.0,
        issued_at: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A signed access token for ``subject``."""
        now = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
            "jti": secrets.token_hex(8),
            "preferred_username": name or subject,
            "roles": sorted(set(roles)),
        }
        claims.update(extra or {})
        return jwt.encode({"alg": "RS256", "kid": self.kid}, claims, self._key)


def _load_or_make(key_file: Path | None) -> RSAKey:
    if key_file is not None and key_file.exists():
        return RSAKey.import_key(json.loads(key_file.read_text(encoding="utf-8")))
    key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(6), "use": "sig"})
    if key_file is not None:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(json.dumps(key.as_dict(private=True)), encoding="utf-8")
        key_file.chmod(0o600)
    return key
