"""The services the fuzz tests aim at, each a real server on loopback: the embedded
federation (its gateway), the editor and the execution service on their own in front of the
federation's issuer and brokers, and a booking-only broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worksteps.broker.api.app import create_app as create_broker
from worksteps.broker.settings import BrokerSettings
from worksteps.core.auth import AuthSettings
from worksteps.core.serving import start_in_thread
from worksteps.editor.api import create_app as create_editor
from worksteps.editor.settings import EditorSettings
from worksteps.execution.api import create_app as create_execution
from worksteps.execution.settings import ExecutionSettings
from worksteps.federation import Federation, FederationConfig, start_federation


@pytest.fixture(scope="package")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    config = FederationConfig(data_dir=tmp_path_factory.mktemp("federation"), port=0)
    with start_federation(config) as running:
        yield running


@pytest.fixture(scope="package")
def auth(federation: Federation) -> AuthSettings:
    return AuthSettings(issuer=federation.issuer.issuer)


@pytest.fixture(scope="package")
def editor(auth: AuthSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Workstep Editor as ``worksteps serve editor`` runs it."""
    data = tmp_path_factory.mktemp("editor")
    settings = EditorSettings(database_url=f"sqlite:///{data}/editor.sqlite", auth=auth)
    served = start_in_thread(create_editor(settings))
    yield served.url
    served.stop()


@pytest.fixture(scope="package")
def execution(
    federation: Federation, auth: AuthSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The execution service as ``worksteps serve execution`` runs it, with the federation's
    brokers."""
    data = tmp_path_factory.mktemp("execution")
    settings = ExecutionSettings(
        database_url=f"sqlite:///{data}/execution.sqlite",
        sites_file=federation.config.data_dir.resolve() / "sites.yaml",
        auth=auth,
        health_interval=0,
        follow_wait=1.0,
    )
    served = start_in_thread(create_execution(settings))
    yield served.url
    served.stop()


@pytest.fixture(scope="package")
def broker(auth: AuthSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker on its own, booking only (no site services), checking tokens as the
    federation's brokers do."""
    data = tmp_path_factory.mktemp("broker")
    settings = BrokerSettings(
        site="fuzz", database_url=f"sqlite:///{data}/broker.sqlite", auth=auth
    )
    served = start_in_thread(create_broker(settings))
    yield served.url
    served.stop()
