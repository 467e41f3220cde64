"""Fixtures: a running broker on loopback, over real HTTP, on each database engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from running import RunningBroker, notebook_request, start_broker, stop_broker

from worksteps.broker.settings import BrokerSettings


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
