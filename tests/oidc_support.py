"""The local OIDC issuer as tests see it (the ``oidc`` fixture in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worksteps.core.auth import AuthSettings
from worksteps.emulators.oidc import LocalIssuer


@dataclass(frozen=True)
class RunningIssuer:
    """The local OIDC issuer served on loopback, and the settings that trust it."""

    issuer: LocalIssuer
    settings: AuthSettings

    def token(self, subject: str, **claims: Any) -> str:
        return self.issuer.mint(subject, **claims)

    def headers(self, subject: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.mint(subject, **claims)}"}
