"""Shared fixtures: a fresh database on each engine, shared/ on disk, a local OIDC issuer."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from oidc_support import RunningIssuer
from worksteps.core.auth import AuthSettings
from worksteps.core.serving import free_port, start_in_thread
from worksteps.emulators.oidc import LocalIssuer
from worksteps.emulators.oidc import create_app as create_issuer_app

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PG_DSN = os.environ.get("WORKSTEPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: an SQLite file, or a PostgreSQL database made for this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/broker.sqlite"
        return
    name = f"wst_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared() -> Path:
    assert SHARED.is_dir(), f"shared/ is expected beside the checkout at {SHARED}"
    return SHARED


@pytest.fixture(scope="session")
def oidc() -> Iterator[RunningIssuer]:
    """A development OIDC issuer on loopback (discovery + JWKS), for tests that sign in."""
    port = free_port()
    issuer = LocalIssuer(f"http://127.0.0.1:{port}")
    served = start_in_thread(create_issuer_app(issuer), port=port)
    try:
        yield RunningIssuer(issuer, AuthSettings(issuer=issuer.issuer, jwks_refresh=0))
    finally:
        served.stop()
