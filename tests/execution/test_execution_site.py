"""A whole site behind the execution service: a broker that prepares sessions through the
emulated Rucio, Cavern, Harbor and Skaha. Its offers carry data locality, which the ranking
explains; a headless job is followed by server-sent events through AVAILABLE to COMPLETED,
and its provenance record names what it used."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from execution_support import ServeExecution, site_entry, sqlite_only, sse_events

from worksteps.broker.api.app import create_app as create_broker_app
from worksteps.broker.settings import BrokerSettings, EngineSettings
from worksteps.core.serving import ServedApp, start_in_thread
from worksteps.emulators.rig import SiteRig, start_site_rig
from worksteps.schema import kinds
from worksteps.schema.provenance import read_provenance

TERMINAL = "skaha/terminal:1.1.2"  # cached at the site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SiteRig, ServedApp]]:
    rig = start_site_rig("rig-x", tmp_path / "site", start_latency=0.2, image_pull_rate=50e6)
    settings = BrokerSettings(
        site="rig-x",
        database_url=f"sqlite:///{tmp_path / 'rig-broker.sqlite'}",
        preparation=timedelta(seconds=1),
        capacity={"cores": 16, "memory": 64, "storage": 100},
        services=rig.services_settings,
        engine=EngineSettings(poll_min=0.05, poll_max=0.5, monitor_interval=0.2),
    )
    broker = start_in_thread(create_broker_app(settings))
    try:
        yield rig, broker
    finally:
        broker.stop()
        rig.stop()


def _headless(rig: SiteRig) -> dict[str, Any]:
    host = rig.harbor.url.removeprefix("http://")
    return {
        "executable": {
            "kind": kinds.EXEC_DOCKER,
            "meta": {"name": "lister"},
            "image": {"locations": [f"{host}/{TERMINAL}"]},
            "command": ["ls", "-lRL", "arc/home"],
        },
        "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 1}, "memory": {"min": 1}},
        "data": [
            {
                "kind": kinds.DATA_RUCIO,
                "meta": {"name": "psf"},
                "rucio": {"scope": "demo", "object": "psf-0004.fits"},
            }
        ],
        "schedule": {"requested": {"duration": "PT1M"}},
    }


@sqlite_only
def test_a_headless_job_is_followed_to_its_end_and_its_provenance_written(
    site: tuple[SiteRig, ServedApp], serve_execution: ServeExecution, oidc: Any
) -> None:
    rig, broker = site
    execution = serve_execution([site_entry("rig-x", broker.url)])
    headers = oidc.headers("alice")
    with execution.client(headers) as client:
        body = client.post("/executions", json={"request": _headless(rig)}).json()
        best = body["offers"][0]
        assert best["locality"] == {"data": "local", "image": "cached"}, best
        assert "data already at rig-x: +0 s" in best["reasons"]
        assert "image cached at the site: +0 s" in best["reasons"]
        assert best["score"]["data"] == best["score"]["image"] == 0
        chosen = client.post(f"/executions/{body['id']}/select", json={"offer": best["offer"]})
        assert chosen.status_code == 200, chosen.text
    url = f"{execution.url}/executions/{body['id']}/events"
    events = sse_events(url, headers, lambda e: e["data"].get("phase") == "COMPLETED", timeout=30)
    phases = [e["data"]["phase"] for e in events if e["event"] == "phase"]
    assert phases == [
        "ACCEPTED",
        "WAITING",
        "PREPARING",
        "AVAILABLE",
        "RUNNING",
        "RELEASING",
        "COMPLETED",
    ], phases
    assert any(e["event"] == "progress" for e in events)
    ids = [int(e["id"]) for e in events if "id" in e]
    assert ids == sorted(set(ids))
    with httpx.Client(base_url=execution.url, headers=headers) as client:
        view = client.get(f"/executions/{body['id']}").json()
        assert view["state"] == "ended" and view["session"]["phase"] == "COMPLETED"
        connectors = view["session"]["connectors"]
        assert view["session"]["access"] == (connectors[0]["location"] if connectors else None)
        record = client.get(f"/executions/{body['id']}/provenance")
    assert record.status_code == 200
    prov = read_provenance(record.json())
    assert prov.phase == "COMPLETED" and prov.site == "rig-x"
    assert prov.inputs == ["demo:psf-0004.fits"]
    assert prov.request.executable is not None
    assert prov.started is not None and prov.ended is not None and prov.ended > prov.started
