"""What the security tests share: the gateway's operations as its OpenAPI document lists them,
the few that are public by design, and users' clients of one federation.

tests/security/conftest.py registers the fixtures; pytest puts this folder on ``sys.path``,
so the tests import this module as ``security_support``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from worksteps.client import WorkstepsClient

__all__ = ["PUBLIC", "Operation", "fill", "operations", "problem", "wait_until_ended"]

# Public by design: liveness, where to sign in, and the template files (a starter notebook
# that a Skaha session downloads without the user's token). Everything else needs a token.
PUBLIC = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/api/auth"),
        ("GET", "/api/health"),
        ("GET", "/api/template-files/{name}"),
    }
)
_METHODS = ("get", "put", "post", "delete", "patch")
_PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    """One operation of the OpenAPI document."""

    method: str
    path: str

    @property
    def public(self) -> bool:
        return (self.method, self.path) in PUBLIC

    @property
    def parameters(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def operations(gateway: str) -> list[Operation]:
    """Every operation the gateway's OpenAPI document describes."""
    document = httpx.get(f"{gateway}/openapi.json", timeout=30).json()
    found = [
        Operation(method.upper(), path)
        for path, item in document["paths"].items()
        for method in _METHODS
        if method in item
    ]
    assert len(found) > 20, "the gateway's OpenAPI document lists too few operations"
    return found


def fill(path: str, values: dict[str, str]) -> str:
    """``path`` with each ``{name}`` replaced by ``values[name]``."""
    return _PARAMETER.sub(lambda match: values[match[1]], path)


def wait_until_ended(client: WorkstepsClient, execution: str, within: float = 60.0) -> None:
    """Until the execution's session has ended and its provenance record is written."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = client.execution(execution, wait=2)
        if found["state"] == "ended" and found.get("provenance"):
            return
        time.sleep(0.1)
    raise AssertionError(f"execution {execution} did not end within {within} s")


def problem(response: httpx.Response) -> dict[str, Any]:
    """The problem document of a refusal (and that it is one)."""
    assert response.headers["content-type"].startswith("application/problem+json"), response
    body: dict[str, Any] = response.json()
    return body
