"""A whole embedded federation (``worksteps up``'s), started once per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worksteps.federation import Federation, FederationConfig, start_federation


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    config = FederationConfig(data_dir=tmp_path_factory.mktemp("federation"), port=0)
    with start_federation(config) as running:
        yield running
