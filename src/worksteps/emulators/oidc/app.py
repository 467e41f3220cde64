"""The serving half of the local issuer: its discovery document and JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from worksteps.emulators.oidc.issuer import LocalIssuer

__all__ = ["create_app"]


def create_app(issuer: LocalIssuer) -> FastAPI:
    """The issuer's HTTP face; ``issuer.issuer`` must be the URL it is served at."""
    app = FastAPI(title="Worksteps development OIDC issuer")

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        base = issuer.issuer
        return {
            "issuer": base,
            "jwks_uri": f"{base}/jwks",
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return issuer.jwks()

    return app
