"""Errors every site adapter raises; third-party errors are converted at the adapter boundary.

    SiteError                  a site service call failed; ``service`` and ``operation`` name it
    ├── TransientSiteError     worth retrying: 5xx, 429, timeouts, refused/reset connections
    └── PermanentSiteError     retrying cannot help: 4xx (bad request, quota, forbidden)
        └── SiteNotFound       the external object (session, rule, node, artifact) is unknown

Adapters raise these ``from`` the original exception and never decide lifecycle phases: the
broker's engine owns retry policy, bounds and what a failure means for a session.
"""

from __future__ import annotations

__all__ = [
    "PermanentSiteError",
    "SiteError",
    "SiteNotFound",
    "TransientSiteError",
    "classify_status",
]


class SiteError(Exception):
    """A call to a site service failed."""

    def __init__(self, service: str, operation: str, message: str, status: int | None = None):
        super().__init__(f"{service} {operation}: {message}")
        self.service = service
        self.operation = operation
        self.message = message
        self.status = status


class TransientSiteError(SiteError):
    """The call may succeed if repeated later."""


class PermanentSiteError(SiteError):
    """The call will fail again if repeated unchanged."""


class SiteNotFound(PermanentSiteError):
    """The external object does not exist (any more)."""


def classify_status(status: int) -> type[SiteError]:
    """The error class for an HTTP status from a site service."""
    if status == 404:
        return SiteNotFound
    if status == 429 or status >= 500:
        return TransientSiteError
    return PermanentSiteError
