"""The seed flow across the three sites of ``worksteps up``, through the gateway's user API
(the Python client) and through the CLI, and every way of making a workstep."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from worksteps.client import ClientError, WorkstepsClient
from worksteps.federation import Federation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_support import Terminal


@pytest.fixture
def alice(federation: Federation) -> Iterator[WorkstepsClient]:
    with WorkstepsClient(federation.gateway, federation.issuer.mint("alice")) as client:
        yield client


@pytest.fixture
def bob(federation: Federation) -> Iterator[WorkstepsClient]:
    with WorkstepsClient(federation.gateway, federation.issuer.mint("bob")) as client:
        yield client


def _by_site(execution: dict[str, Any]) -> dict[str, str]:
    return {b["site"]: b["status"] for b in execution["brokers"]}


def _wait_phase(client: WorkstepsClient, execution: str, phases: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = client.execution(execution, wait=5)
        if found.get("phase") in phases:
            return found
    pytest.fail(f"{execution} never reached {phases}")


def test_the_seed_flow_picks_the_data_local_site_and_opens_jupyterlab(
    federation: Federation, alice: WorkstepsClient
) -> None:
    made = alice.create("template", template="jupyterlab", name="cube look")
    edited = alice.add_data(made["uuid"], ["demo:vlass-cube-0001.fits"], made["version"])
    edited = alice.edit(
        made["uuid"], "compute", edited["compute"] | {"cores": {"min": 2, "max": 4}}, 2
    )
    assert edited["version"] == 3
    execution = alice.execute(made["uuid"])
    assert _by_site(execution) == {"site-a": "offers", "site-b": "offers", "site-c": "offers"}
    best = min(execution["offers"], key=lambda o: o["rank"])
    assert best["site"] == "site-a"  # the cube has its only replica at SITE-A
    assert best["locality"] == {"data": "local", "image": "cached"}
    assert any("data" in reason for reason in best["reasons"])
    selected = alice.select(execution["id"], best["offer"])
    assert selected["selected"]["site"] == "site-a"
    # every other offer, at every broker, was rejected at once
    for offer in execution["offers"]:
        if offer["offer"] == best["offer"]:
            continue
        broker = federation.site(offer["site"]).url
        headers = {"Accept": "application/json", **alice.authorization}
        answer = httpx.get(f"{broker}/sessions/{offer['offer']}", headers=headers)
        phase = answer.json()["phase"]
        assert phase == "REJECTED", offer
    steps = set()
    for event in alice.events(execution["id"]):
        if event.get("kind"):
            steps.add(event["kind"])
        if event.get("phase") == "AVAILABLE":
            break
    assert {"area", "stage", "place", "image", "launch"} <= steps, steps
    ready = alice.execution(execution["id"])
    assert ready["phase"] == "AVAILABLE"
    link = ready["session"]["access"]
    assert "token=" in link
    assert httpx.get(link, follow_redirects=True, timeout=30).status_code == 200
    assert httpx.get(link.split("?")[0], timeout=30).status_code in (302, 401, 403)
    alice.cancel(execution["id"])
    ended = _wait_phase(alice, execution["id"], {"COMPLETED", "CANCELLED"})
    assert ended["state"] == "ended"
    # the capacity is free again: the whole of site-a can be offered
    whole = alice.create("template", template="python-script")
    alice.edit(whole["uuid"], "compute", whole["compute"] | {"cores": {"min": 32}}, 1)
    again = alice.execute(whole["uuid"])
    assert any(o["site"] == "site-a" for o in again["offers"]), again["brokers"]
    alice.cancel(again["id"])


def test_six_ways_to_make_a_workstep(federation: Federation, alice: WorkstepsClient) -> None:
    empty = alice.create("empty", name="blank")
    assert empty["version"] == 1 and empty.get("executable") is None
    from_data = alice.create("data", references=["demo:askap-obs-0002.ms.tar"])
    assert len(from_data["data"]) == 1
    from_template = alice.create("template", template="carta")
    discovery = federation.url("discovery")
    listing = httpx.get(f"{discovery}/software", headers={"Accept": "application/json"}).json()
    entries = listing.get("software", listing) if isinstance(listing, dict) else listing
    first = entries[0]
    software = alice.create("discovery", url=f"{discovery}/software/{first['id']}")
    assert software["executable"] is not None
    history = alice.create(
        "history", url=f"{federation.gateway}/api/worksteps/{from_template['uuid']}"
    )
    assert history["executable"] == from_template["executable"]
    # a headless run that ends, so that it writes its provenance record
    script = alice.create("template", template="python-script")
    execution = alice.execute(script["uuid"])
    best = min(execution["offers"], key=lambda o: o["rank"])
    alice.select(execution["id"], best["offer"])
    alice.cancel(execution["id"])
    _wait_phase(alice, execution["id"], {"COMPLETED", "CANCELLED", "FAILED"})
    deadline = time.monotonic() + 30
    while not alice.execution(execution["id"])["provenance"]:
        assert time.monotonic() < deadline, "no provenance record"
        time.sleep(0.2)
    record = alice.provenance(execution["id"])
    assert "activity" in record and "entity" in record
    again = alice.create(
        "provenance", url=f"{federation.gateway}/api/executions/{execution['id']}/provenance"
    )
    assert again["executable"] == script["executable"]
    from_session = alice.create(
        "history", url=f"{federation.gateway}/api/executions/{execution['id']}"
    )
    assert from_session["executable"] == script["executable"]


def test_another_users_work_is_not_there(
    federation: Federation, alice: WorkstepsClient, bob: WorkstepsClient
) -> None:
    mine = alice.create("empty", name="private")
    with pytest.raises(ClientError) as refused:
        bob.workstep(mine["uuid"])
    assert refused.value.status == 404
    assert all(w["uuid"] != mine["uuid"] for w in bob.worksteps())
    with pytest.raises(ClientError) as stolen:
        bob.create("history", url=f"{federation.gateway}/api/worksteps/{mine['uuid']}")
    assert stolen.value.status == 422


def test_the_cli_signs_in_and_runs_the_flow(federation: Federation, tmp_path: Path) -> None:
    terminal = Terminal(tmp_path / "home", federation.gateway, "bob")
    assert "Signed in" in terminal.ok("login")
    made = terminal.json("workstep", "create", "--template", "python-script", "--name", "cli")
    terminal.ok("workstep", "edit", made["uuid"], "--cores", "1:2", "--memory", "2")
    shown = terminal.json("workstep", "show", made["uuid"])
    assert shown["version"] == 2 and shown["compute"]["cores"] == {"min": 1, "max": 2}
    table = terminal.ok("execute", made["uuid"])
    assert "site-a" in table and "site-b" in table and "site-c" in table
    execution = terminal.json("sessions")[0]["id"]
    assert "Selected" in terminal.ok("select", execution, "--rank", "1")
    watched = terminal.run("watch", execution)
    assert watched.exit_code == 0, watched.output
    assert "Ready" in watched.output and "launch" in watched.output
    assert "Cancelled" in terminal.ok("cancel", execution)
    bad = terminal.run("workstep", "edit", made["uuid"], "--cores", "4:2")
    assert bad.exit_code == 2 and "MIN <= MAX" in bad.output
    broken = dict(shown["compute"], cores={"min": -1})
    invalid = terminal.run("workstep", "edit", made["uuid"], "--compute", json.dumps(broken))
    assert invalid.exit_code == 2 and "cores" in invalid.output
    assert terminal.json("workstep", "show", made["uuid"])["version"] == 2  # nothing stored
    stranger = Terminal(tmp_path / "nobody", federation.gateway, "alice")
    refused = stranger.run("workstep", "list")
    assert refused.exit_code == 1 and "worksteps login" in refused.output
