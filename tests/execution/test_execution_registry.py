"""The broker registry: the sites file, capabilities (hopeless requests are not sent) and
health (on demand and periodic), over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from execution_support import Broker, ServeExecution, down_url, notebook, site_entry, write_sites
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from worksteps.core.serving import serve_in_thread
from worksteps.execution.api import create_app
from worksteps.execution.registry import SitesFileError, load_sites
from worksteps.execution.settings import ExecutionSettings


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Health and capabilities are not stored: SQLite only."""
    return f"sqlite:///{tmp_path}/execution.sqlite"


def test_a_sites_file_is_read_with_capabilities_and_descriptions(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(
        """
sites:
  - name: site-a
    url: http://127.0.0.1:8082/
    description: the small one
    capabilities: {sessions: [notebook, headless], gpus: 0, cores: 32, memory: 128,
                   data: [SITE-A], executables: [jupyter-notebook]}
  - name: site-b
    url: https://broker.example.org/site-b
""",
        encoding="utf-8",
    )
    first, second = load_sites(path)
    assert first.url == "http://127.0.0.1:8082"  # no trailing slash
    assert first.description == "the small one"
    assert first.capabilities.sessions == ["notebook", "headless"]
    assert first.capabilities.cores == 32 and first.capabilities.data == ["SITE-A"]
    assert second.capabilities.sessions == [] and second.capabilities.cores is None
    bare = tmp_path / "bare.yaml"
    bare.write_text("- {name: solo, url: 'http://h:1'}\n", encoding="utf-8")
    assert [s.name for s in load_sites(bare)] == ["solo"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sites: [{name: a}]", "sites.0.url"),
        ("sites: [{name: a, url: 'ftp://h/x'}]", "http(s) URL"),
        ("sites: [{name: a, url: 'http://h'}, {name: a, url: 'http://g'}]", "unique: a"),
        ("sites: [{name: a, url: 'http://h', capabilitiez: {}}]", "capabilitiez"),
        ("sites: [{name: 'a b', url: 'http://h'}]", "sites.0.name"),
        ("sites: [{name: a, url: 'http://h', capabilities: {cores: -1}}]", "cores"),
        ("sites: {a: 1", "cannot be read"),
        ("just text", "a list of sites"),
    ],
)
def test_a_bad_sites_file_is_refused_with_the_place(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SitesFileError, match=r"sites\.yaml") as caught:
        load_sites(path)
    assert message in str(caught.value)


def test_the_service_refuses_to_start_on_a_bad_or_missing_sites_file(
    tmp_path: Path, oidc: Any
) -> None:
    missing = ExecutionSettings(auth=oidc.settings, sites_file=tmp_path / "nowhere.yaml")
    with pytest.raises(SitesFileError, match="cannot be read"):
        create_app(missing)
    clash = ExecutionSettings(
        auth=oidc.settings,
        sites_file=write_sites(tmp_path / "s.yaml", [site_entry("a", "http://h:1")]),
        sites=[{"name": "a", "url": "http://g:1"}],
    )
    with pytest.raises(SitesFileError, match="unique"):
        create_app(clash)


def _failing_app() -> Starlette:
    async def root(request: Any) -> PlainTextResponse:
        return PlainTextResponse("down for maintenance", status_code=503)

    return Starlette(routes=[Route("/", root)])


def test_health_on_demand_shows_each_broker_and_its_capabilities(
    brokers: dict[str, Broker], serve_execution: ServeExecution, oidc: Any
) -> None:
    with serve_in_thread(_failing_app()) as failing:
        execution = serve_execution(
            [
                site_entry(
                    "site-a",
                    brokers["site-a"].url,
                    description="small",
                    capabilities={"sessions": ["notebook"], "gpus": 0},
                ),
                site_entry("site-down", down_url()),
                site_entry("site-failing", failing.url),
            ]
        )
        with execution.client(oidc.headers("alice")) as client:
            before = client.get("/sites").json()["sites"]
            assert [s["health"]["status"] for s in before] == ["unknown"] * 3
            checked = client.get("/sites", params={"check": "true"}).json()["sites"]
            kept = client.get("/sites").json()["sites"]
        with httpx.Client(base_url=execution.url) as anonymous:
            assert anonymous.get("/sites").status_code == 401
    health = {s["name"]: s["health"] for s in checked}
    assert health["site-a"]["status"] == "up" and health["site-a"]["latency"] is not None
    assert health["site-down"]["status"] == "down" and "Connect" in health["site-down"]["detail"]
    assert health["site-failing"]["status"] == "degraded"
    assert health["site-failing"]["httpStatus"] == 503
    assert checked[0]["capabilities"] == {
        "sessions": ["notebook"],
        "executables": [],
        "gpus": 0,
        "data": [],
    }
    assert checked[0]["description"] == "small"
    assert [s["health"] for s in kept] == [s["health"] for s in checked]


def test_health_is_checked_periodically_and_by_every_answer(
    brokers: dict[str, Broker], serve_execution: ServeExecution, oidc: Any
) -> None:
    execution = serve_execution(
        [site_entry("site-b", brokers["site-b"].url), site_entry("site-down", down_url())],
        health_interval=0.2,
    )
    with execution.client(oidc.headers("alice")) as client:
        deadline = time.monotonic() + 5
        while True:
            statuses = [s["health"]["status"] for s in client.get("/sites").json()["sites"]]
            if "unknown" not in statuses or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert statuses == ["up", "down"]
        first = client.get("/sites").json()["sites"][0]["health"]["checked"]
        time.sleep(0.5)
        assert client.get("/sites").json()["sites"][0]["health"]["checked"] != first


def test_a_site_that_cannot_run_the_request_is_skipped_and_not_asked(
    brokers: dict[str, Broker], serve_execution: ServeExecution, oidc: Any
) -> None:
    execution = serve_execution(
        [
            site_entry(
                "site-a", brokers["site-a"].url, capabilities={"executables": ["docker-container"]}
            ),
            site_entry("site-b", brokers["site-b"].url, capabilities={"cores": 4}),
            site_entry("site-c", brokers["site-c"].url, capabilities={"cores": 32}),
        ]
    )
    with execution.client(oidc.headers("alice")) as client:
        body = client.post("/executions", json={"request": notebook(8, 32)}).json()
    status = {b["site"]: b for b in body["brokers"]}
    assert status["site-a"]["status"] == "skipped"
    assert "docker-container" in status["site-a"]["error"]
    assert status["site-b"]["status"] == "skipped"
    assert status["site-b"]["error"] == "cores: at least 8 needed, the site has 4"
    assert status["site-c"]["status"] == "offers"
    assert [b.requests_received() for b in brokers.values()] == [0, 0, 1]
