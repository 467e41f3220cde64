"""Fixtures: a running broker on loopback, over real HTTP, on each database engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from running import RunningBroker, notebook_request, start_broker, stop_broker

from worksteps.broker.settings import BrokerSettings, EngineSettings
from worksteps.emulators.rig import SiteRig, start_site_rig


@pytest.fixture
def broker_settings(database_url: str) -> BrokerSettings:
    return BrokerSettings(
        site="test-site",
        database_url=database_url,
        capacity={"cores": 16, "memory": 64, "gpus": 0, "storage": 100},  # type: ignore[arg-type]
    )


@pytest.fixture
def broker(broker_settings: BrokerSettings) -> Iterator[RunningBroker]:
    running = start_broker(broker_settings)
    try:
        yield running
    finally:
        stop_broker(running)


@pytest.fixture
def make_request() -> Callable[..., dict[str, Any]]:
    """A factory of notebook execution requests (JSON documents)."""
    return notebook_request


ASTROML = "skaha/astroml:24.07"  # only upstream: the engine must replicate it


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[SiteRig]:
    site = start_site_rig(
        "rig-a",
        tmp_path / "site",
        bandwidth=4e6,
        storage_bandwidth=2e6,
        start_latency=0.3,
        image_pull_rate=20e6,
    )
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture
def site_broker(rig: SiteRig, database_url: str) -> Iterator[RunningBroker]:
    settings = BrokerSettings(
        site="rig-a",
        database_url=database_url,
        preparation=timedelta(seconds=1),
        capacity={"cores": 16, "memory": 64, "storage": 100},  # type: ignore[arg-type]
        services=rig.services_settings,
        engine=EngineSettings(
            poll_min=0.05,
            poll_max=0.5,
            monitor_interval=0.2,
            retry_base=0.05,
            retry_max=0.5,
            notebook_image=f"{rig.harbor.url.removeprefix('http://')}/{ASTROML}",
        ),
    )
    broker = start_broker(settings)
    try:
        yield broker
    finally:
        stop_broker(broker)
