"""One embedded federation (``worksteps up``'s) for all the security tests, and its users."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worksteps.client import WorkstepsClient
from worksteps.federation import Federation, FederationConfig, start_federation


@pytest.fixture(scope="package")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    config = FederationConfig(data_dir=tmp_path_factory.mktemp("federation"), port=0)
    with start_federation(config) as running:
        yield running


@pytest.fixture
def alice(federation: Federation) -> Iterator[WorkstepsClient]:
    with WorkstepsClient(federation.gateway, federation.issuer.mint("alice")) as client:
        yield client


@pytest.fixture
def bob(federation: Federation) -> Iterator[WorkstepsClient]:
    with WorkstepsClient(federation.gateway, federation.issuer.mint("bob")) as client:
        yield client
