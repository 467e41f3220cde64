"""Fixtures: three real booking-only brokers of different sizes, and the execution service in
front of them (its store on SQLite and on PostgreSQL), over real HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from execution_support import (
    Broker,
    BrokerDatabase,
    Execution,
    ServeExecution,
    site_entry,
    start_broker,
    start_execution,
    write_sites,
)

from worksteps.execution.settings import ExecutionSettings

SIZES = {"site-a": (8, 32), "site-b": (16, 64), "site-c": (32, 128)}


@pytest.fixture(scope="session")
def broker_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated broker database: copied for each broker, so that brokers start in
    a fraction of the time their migrations take."""
    path = tmp_path_factory.mktemp("broker-template") / "broker.sqlite"
    start_broker("template", path, 1, 1).stop()
    return path


@pytest.fixture
def broker_database(broker_template: Path, tmp_path: Path) -> BrokerDatabase:
    """``broker_database(name)``: a fresh broker database file for this test."""

    def make(name: str) -> Path:
        target = tmp_path / f"{name}.sqlite"
        shutil.copyfile(broker_template, target)
        return target

    return make


@pytest.fixture
def brokers(broker_database: BrokerDatabase) -> Iterator[dict[str, Broker]]:
    """site-a (8 cores, 32 GiB), site-b (16, 64), site-c (32, 128): booking only."""
    # one after another: Alembic's migration context is global to the process
    started: dict[str, Broker] = {}
    try:
        for name, (cores, memory) in SIZES.items():
            started[name] = start_broker(name, broker_database(name), cores, memory)
        yield started
    finally:
        with ThreadPoolExecutor(len(started)) as pool:
            list(pool.map(Broker.stop, started.values()))


@pytest.fixture
def serve_execution(database_url: str, oidc: Any, tmp_path: Path) -> Iterator[ServeExecution]:
    """``serve_execution(sites, **settings)``: the service with these sites (dicts of the
    sites file), its database on the engine of this test run; stopped after the test."""
    with ExitStack() as stack:

        def serve(sites: list[dict[str, Any]], **overrides: Any) -> Execution:
            values: dict[str, Any] = {
                "database_url": database_url,
                "sites_file": write_sites(tmp_path / "sites.yaml", sites),
                "auth": oidc.settings,
                "deadline": 5.0,
                "max_deadline": 10.0,
                "late_grace": 10.0,
                "health_interval": 0,
                "call_timeout": 10.0,
                "follow_wait": 0.25,  # brokers stop at once after a test (no long-poll open)
            }
            values.update(overrides)
            running = start_execution(ExecutionSettings(**values))
            stack.callback(running.served.stop)
            return running

        yield serve


@pytest.fixture
def execution(brokers: dict[str, Broker], serve_execution: ServeExecution) -> Execution:
    """The service in front of the three brokers."""
    return serve_execution([site_entry(n, b.url) for n, b in brokers.items()])
