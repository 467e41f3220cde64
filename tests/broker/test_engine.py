"""The preparation engine end to end: a broker prepares accepted sessions at a site made of
the emulators (Rucio, Cavern, Harbor, Skaha) through the real adapters, over HTTP."""

from __future__ import annotations

import itertools
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from running import JSON, RunningBroker, start_broker, stop_broker

from worksteps.emulators.faults import FaultRule
from worksteps.emulators.rig import SiteRig
from worksteps.schema import kinds

TERMINAL = "skaha/terminal:1.1.2"  # cached at the site


def _host(rig: SiteRig) -> str:
    return rig.harbor.url.removeprefix("http://")


def _events(
    broker: RunningBroker, uuid: str, until: set[str], timeout: float = 60
) -> list[dict[str, Any]]:
    """Follow the session's event stream until one of the ``until`` phases."""
    seen: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=broker.url, timeout=timeout) as client,
        client.stream("GET", f"/sessions/{uuid}/events") as stream,
    ):
        deadline = time.monotonic() + timeout
        for line in stream.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                seen.append(event)
                if event.get("phase") in until:
                    break
            assert time.monotonic() < deadline, seen
    return seen


def _phases(events: list[dict[str, Any]]) -> list[str]:
    return [e["phase"] for e in events if e["type"] == "phase"]


def _accept_first(broker: RunningBroker, doc: dict[str, Any]) -> str:
    offerset = broker.offers(doc)
    assert offerset["result"] == "YES", offerset
    uuid: str = offerset["offers"][0]["meta"]["uuid"]
    assert broker.update(uuid, "ACCEPTED").status_code == 200
    return uuid


def _headless(rig: SiteRig, *data: dict[str, Any], duration: str = "PT1M") -> dict[str, Any]:
    return {
        "executable": {
            "kind": kinds.EXEC_DOCKER,
            "meta": {"name": "lister"},
            "image": {"locations": [f"{_host(rig)}/{TERMINAL}"]},
            "command": ["ls", "-lRL", "arc/home"],
        },
        "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 1}, "memory": {"min": 1}},
        "data": list(data),
        "schedule": {"requested": {"duration": duration}},
    }


def _rucio(name: str) -> dict[str, Any]:
    return {
        "kind": kinds.DATA_RUCIO,
        "meta": {"name": name},
        "rucio": {"scope": "demo", "object": name},
    }


def test_headless_session_is_prepared_run_and_released(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    uuid = _accept_first(
        site_broker, _headless(rig, _rucio("cube-0003.fits"), _rucio("psf-0004.fits"))
    )
    events = _events(site_broker, uuid, {"COMPLETED", "FAILED"})
    assert _phases(events) == [
        "ACCEPTED",
        "WAITING",
        "PREPARING",
        "AVAILABLE",
        "RUNNING",
        "RELEASING",
        "COMPLETED",
    ], events
    staged = [e for e in events if e.get("kind") == "stage" and e.get("bytes_total")]
    assert staged and staged[-1]["percent"] == 100.0
    placed = [e for e in events if e.get("kind") == "place" and e.get("bytes_total")]
    assert any(0 < e["percent"] < 100 for e in placed), "progress is reported on the way"
    session = site_broker.session(uuid)
    assert session["phase"] == "COMPLETED"
    # every external operation was submitted exactly once, counted at the emulators
    assert rig.rucio.app.count("POST", r"^/rules/?$") == 2
    assert rig.skaha.app.count("POST", r"^/skaha/v1/session$") == 1
    logs = (rig.root / "skaha").rglob("*.log")
    listing = "\n".join(p.read_text() for p in logs)
    assert "cube-0003.fits" in listing and "psf-0004.fits" in listing
    # the booking is freed: the whole site can be offered again at once
    assert (
        site_broker.offers(
            _headless(rig)
            | {
                "compute": {
                    "kind": kinds.COMPUTE_SIMPLE,
                    "cores": {"min": 16},
                    "memory": {"min": 64},
                }
            }
        )["result"]
        == "YES"
    )


def test_notebook_session_has_a_working_link_and_cancel_stops_it(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    notebook = {
        "executable": {
            "kind": kinds.EXEC_JUPYTER,
            "meta": {"name": "nb"},
            "location": f"{site_broker.url}/openapi.json",
        },
        "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 1}, "memory": {"min": 2}},
        "schedule": {"requested": {"duration": "PT10M"}},
    }
    uuid = _accept_first(site_broker, notebook)
    events = _events(site_broker, uuid, {"AVAILABLE", "FAILED"}, timeout=120)
    assert _phases(events)[-1] == "AVAILABLE", events
    assert any(e.get("kind") == "image" for e in events)
    session = site_broker.session(uuid)
    link = session["connectors"][0]["location"]
    assert session["connectors"][0]["status"] == "AVAILABLE"
    with httpx.Client(timeout=30, follow_redirects=True) as client:
        assert client.get(link).status_code == 200
        assert site_broker.update(uuid, "CANCELLED").status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if client.get(link).status_code != 200:
                    break
            except httpx.TransportError:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the notebook still answers after cancel")
    assert rig.harbor.app.count("POST", r"/replication/executions$") == 1


def test_permanent_failure_names_the_step_and_frees_capacity(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    uuid = _accept_first(site_broker, _headless(rig, _rucio("no-such-file.fits")))
    events = _events(site_broker, uuid, {"FAILED", "COMPLETED"})
    assert _phases(events)[-1] == "FAILED"
    session = site_broker.session(uuid)
    text = " ".join(m.get("message", "") for m in session["meta"]["messages"])
    assert "stage:" in text and "rucio" in text
    assert (
        site_broker.offers(
            _headless(rig)
            | {
                "compute": {
                    "kind": kinds.COMPUTE_SIMPLE,
                    "cores": {"min": 16},
                    "memory": {"min": 64},
                }
            }
        )["result"]
        == "YES"
    )


def test_transient_faults_are_retried(rig: SiteRig, site_broker: RunningBroker) -> None:
    rig.cavern.app.rules = [FaultRule(path="/transfers", error_rate=0.2, status=503)]
    rig.skaha.app.rules = [FaultRule(path="/session", error_rate=0.2, status=503)]
    uuid = _accept_first(site_broker, _headless(rig, _rucio("obs-0001.ms.tar")))
    events = _events(site_broker, uuid, {"COMPLETED", "FAILED"})
    assert _phases(events)[-1] == "COMPLETED", [e["message"] for e in events if e.get("message")]


def test_the_booked_duration_is_enforced(rig: SiteRig, site_broker: RunningBroker) -> None:
    sleeper = _headless(rig, duration="PT8S")
    sleeper["executable"]["command"] = ["sleep", "600"]
    sleeper["data"] = []
    uuid = _accept_first(site_broker, sleeper)
    events = _events(site_broker, uuid, {"COMPLETED", "FAILED"}, timeout=60)
    assert _phases(events)[-3:] == ["RUNNING", "RELEASING", "COMPLETED"], events
    assert site_broker.client.get(f"/sessions/{uuid}", headers=JSON).json()["phase"] == (
        "COMPLETED"
    )


def test_the_watchdog_fails_a_step_without_progress(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    settings = site_broker.settings
    stop_broker(site_broker)
    slow = settings.model_copy(
        update={
            "engine": settings.engine.model_copy(
                update={"stall_timeout": timedelta(seconds=2), "call_timeout": 1.0}
            )
        }
    )
    broker = start_broker(slow)
    try:
        # a hanging Rucio: every rule poll times out, and nothing moves
        rig.rucio.app.rules = [FaultRule(method="GET", path="^/rules/", hang=True)]
        uuid = _accept_first(broker, _headless(rig, _rucio("cube-0003.fits")))
        events = _events(broker, uuid, {"FAILED", "COMPLETED"}, timeout=60)
        assert _phases(events)[-1] == "FAILED"
        failed = next(e for e in events if e.get("phase") == "FAILED")
        assert "stage:" in failed["message"]
        assert "no progress" in failed["message"]
    finally:
        stop_broker(broker)


def test_long_poll_answers_changes_of_the_session_not_its_progress(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    """Progress events come and go while a session prepares; a long-poll answers only when
    the session itself changes (or its wait ends)."""
    uuid = _accept_first(site_broker, _headless(rig, _rucio("cube-0003.fits")))
    answers: list[tuple[str, float]] = []
    phase = ""
    deadline = time.monotonic() + 60
    while phase not in ("COMPLETED", "FAILED") and time.monotonic() < deadline:
        started = time.monotonic()
        doc = site_broker.client.get(f"/sessions/{uuid}?wait=20", headers=JSON).json()
        answers.append((doc["phase"], time.monotonic() - started))
        phase = doc["phase"]
    phases = [p for p, _ in answers]
    assert phases[-1] == "COMPLETED", answers
    repeated = [a for a, b in itertools.pairwise(answers) if a[0] == b[0]]
    assert not repeated, f"answered without a change: {answers}"
    progress = _events(site_broker, uuid, {"COMPLETED"})
    assert sum(e["type"] == "progress" for e in progress) > len(answers)
