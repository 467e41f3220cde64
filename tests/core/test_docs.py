"""Every service's /docs page and its assets come from the service itself, not from a CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from worksteps.broker.api.app import create_app
from worksteps.broker.settings import BrokerSettings
from worksteps.core.serving import start_in_thread


@pytest.fixture(scope="module")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("docs") / "broker.sqlite"
    served = start_in_thread(create_app(BrokerSettings(database_url=f"sqlite:///{database}")))
    yield served.url
    served.stop()


def test_docs_are_served_locally(broker_url: str) -> None:
    page = httpx.get(f"{broker_url}/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        assert httpx.get(f"{broker_url}{asset}").status_code == 200, asset
    assert "cdn" not in page.text.lower()
    assert httpx.get(f"{broker_url}/openapi.json").json()["info"]["title"].startswith("Worksteps")
