"""A service's own bearer token, from its issuer's client-credentials grant (RFC 6749 §4.4).

A service that acts when no user is there (the execution service following sessions after a
restart, say) authenticates as itself. The token is fetched on first use and again shortly
before it expires; concurrent callers share one fetch. The secret goes only to the token
endpoint, and no token or secret is ever logged.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from pydantic import BaseModel, Field, SecretStr

from worksteps.core.errors import Unavailable

__all__ = ["ServiceClientSettings", "ServiceToken"]


class ServiceClientSettings(BaseModel):
    """The service's confidential client at the issuer."""

    token_url: str = Field(description="The issuer's token endpoint.")
    client_id: str = Field(description="The service's client id.")
    client_secret: SecretStr = Field(description="The service's client secret.")
    renew_before: float = Field(
        60.0, ge=0, le=3600, description="Seconds before expiry a token is renewed."
    )


class ServiceToken:
    """Authorization headers for calls the service makes as itself."""

    def __init__(self, settings: ServiceClientSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self._client = client
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer …"}``; :class:`Unavailable` when the issuer refuses."""
        if self._token is None or time.monotonic() >= self._renew_at:
            async with self._lock:
                if self._token is None or time.monotonic() >= self._renew_at:
                    await self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self) -> None:
        s = self.settings
        try:
            answer = await self._client.post(
                s.token_url,
                data={"grant_type": "client_credentials"},
                auth=(s.client_id, s.client_secret.get_secret_value()),
                headers={"Accept": "application/json"},
            )
            body = answer.json() if answer.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"the issuer's token endpoint failed: {type(exc).__name__}") from exc
        token, lifetime = body.get("access_token"), body.get("expires_in", 300)
        if not isinstance(token, str) or not isinstance(lifetime, int | float):
            raise Unavailable(f"the issuer gave no service token (HTTP {answer.status_code})")
        self._token = token
        self._renew_at = time.monotonic() + max(float(lifetime) - s.renew_before, lifetime / 2)
