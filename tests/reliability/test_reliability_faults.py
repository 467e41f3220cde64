"""Transient faults at the site are ridden out: the broker (its own process) retries, and the
sessions complete as undisturbed ones would. The emulated site services run here, over real
HTTP, with faults injected per call (``reliability_chaos.Chaos``), per connection
(``FlakyPort``) or per route (the emulators' own ``/_emulator/faults``).

The first test is the requirement as stated: fifty sessions while every site service fails a
fifth of its calls. The tests after it pin down, one by one, faults that once failed or
duplicated sessions: a registry token service's 503, a storage look-up timing out while a
conflict was being handled, and a launch processed after the broker's client gave up."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_broker import BrokerProcess
from reliability_chaos import ChaosMix, FlakyPort, calm, unleash
from reliability_site import (
    BrokerClient,
    broker_settings,
    calls,
    job_request,
    messages,
    start_site,
    unlike_undisturbed,
)

from worksteps.emulators.rig import RunningEmulator, SiteRig

SESSIONS = 50
CHAOS = ChaosMix(errors=0.08, late=0.04, slow=0.04, hang=0.04, delay=4.0)
"""A fifth of the calls to every site service fail: 5xx at once, or no answer within the
broker's call timeout (3 s; each client gives up after 2 s)."""
CHAOTIC = ("skaha", "rucio", "preparedata", "cavern", "harbor", "upstream")
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SiteRig]:
    rig = start_site(tmp_path / "site", SESSIONS)
    try:
        yield rig
    finally:
        rig.stop()


@SQLITE_ONLY
def test_fifty_sessions_complete_while_every_service_fails_a_fifth_of_its_calls(
    site: SiteRig, tmp_path: Path, database_url: str
) -> None:
    services = site.services_settings
    # Skaha, Rucio and Cavern are reached through relays that refuse and reset connections.
    relays = {
        "skaha": FlakyPort(services.skaha.url, seed=1).start(),
        "rucio": FlakyPort(services.rucio.host, seed=2).start(),
        "cavern": FlakyPort(services.cavern.capabilities_url, seed=3).start(),
    }
    relayed = services.model_copy(
        update={
            "skaha": services.skaha.model_copy(update={"url": relays["skaha"].url}),
            "rucio": services.rucio.model_copy(update={"host": relays["rucio"].url}),
            "cavern": services.cavern.model_copy(update={"capabilities_url": relays["cavern"].url}),
        }
    )
    chaotic = [site.emulators[name] for name in CHAOTIC]
    layers = unleash(chaotic, CHAOS, seed=11)
    settings = broker_settings(site, database_url, services=relayed)
    try:
        with BrokerProcess(settings, tmp_path / "broker") as broker:
            client = BrokerClient(broker.url, timeout=60)
            with ThreadPoolExecutor(8) as pool:
                uuids = list(pool.map(lambda i: client.open(job_request(site, i)), range(SESSIONS)))
            docs = client.sessions(uuids, timeout=240, give_up_on=frozenset({"FAILED"}))
            failed = {
                u: _failure(client.events(u)) for u, d in docs.items() if d["phase"] == "FAILED"
            }
            assert not failed, failed
            late = {u: d["phase"] for u, d in docs.items() if d["phase"] != "COMPLETED"}
            assert len(docs) == SESSIONS and not late, late
            wrong = {u: w for u in uuids if (w := unlike_undisturbed(client.events(u)))}
            assert not wrong, wrong
    finally:
        calm(chaotic)
        for relay in relays.values():
            relay.stop()
    # the faults really happened, at every service and of every kind
    for name, layer in layers.items():
        if name != "preparedata":  # configured, but the engine does not use it
            assert set(layer.done) == {"served", "errors", "late", "slow", "hang"}, name
    for name, relay in relays.items():
        assert relay.counts["outages"] > 0 and relay.counts["reset"] > 0, (name, relay.counts)


def _failure(events: list[dict[str, Any]]) -> str:
    """Why a session failed: the message of its FAILED event."""
    return next((str(e.get("message")) for e in events if e.get("phase") == "FAILED"), "?")


def _faults(emulator: RunningEmulator, rules: list[dict[str, object]]) -> None:
    """Replace the emulator's fault rules through its control API."""
    httpx.put(f"{emulator.url}/_emulator/faults", json=rules, timeout=10).raise_for_status()


def _wait_for_call(emulator: RunningEmulator, method: str, path: str, more_than: int) -> None:
    deadline = time.monotonic() + 30
    while _count(emulator, method, path) <= more_than:
        assert time.monotonic() < deadline, f"no {method} {path} at {emulator.name}"
        time.sleep(0.05)


def _count(emulator: RunningEmulator, method: str, path: str) -> int:
    return sum(
        n
        for key, n in calls(emulator).items()
        if key.startswith(f"{method} ") and re.search(path, key.split(" ", 1)[1])
    )


@SQLITE_ONLY
def test_a_moment_of_503_from_the_registry_token_service_is_ridden_out(
    site: SiteRig, tmp_path: Path, database_url: str
) -> None:
    token = r"^/service/token$"
    with BrokerProcess(broker_settings(site, database_url), tmp_path / "broker") as broker:
        client = BrokerClient(broker.url)
        # from before the offer, so that no manifest read for the estimate can be reused
        _faults(site.upstream, [{"path": token, "error_rate": 1.0, "status": 503}])
        offered = client.offer(job_request(site, 0))["offers"][0]["meta"]["uuid"]
        assert client.accept(offered).status_code == 200
        # the image step meets the 503, retries, and meets it again
        _wait_for_call(site.upstream, "GET", token, _count(site.upstream, "GET", token))
        assert client.session(offered)["phase"] in ("ACCEPTED", "WAITING", "PREPARING")
        _faults(site.upstream, [])
        doc = client.sessions([offered], timeout=60)[offered]
        assert doc["phase"] == "COMPLETED", messages(doc)


@SQLITE_ONLY
def test_a_storage_look_up_that_times_out_after_a_conflict_is_ridden_out(
    site: SiteRig, tmp_path: Path, database_url: str
) -> None:
    nodes = r"^/cavern/nodes/"
    with BrokerProcess(broker_settings(site, database_url), tmp_path / "broker") as broker:
        client = BrokerClient(broker.url)
        first = client.open(job_request(site, 0))  # makes the parent of every area
        assert client.sessions([first])[first]["phase"] == "COMPLETED"
        before = _count(site.cavern, "GET", nodes)
        # a look-up answered after the client's 2 s timeout
        _faults(site.cavern, [{"method": "GET", "path": nodes, "latency": 3.0}])
        second = client.open(job_request(site, 1))
        _wait_for_call(site.cavern, "GET", nodes, before)
        _faults(site.cavern, [])
        doc = client.sessions([second], timeout=60)[second]
        assert doc["phase"] == "COMPLETED", messages(doc)


@SQLITE_ONLY
def test_a_launch_processed_after_the_client_gave_up_does_not_run_the_job_twice(
    site: SiteRig, tmp_path: Path, database_url: str
) -> None:
    slow = ChaosMix(errors=0, late=0, slow=1.0, hang=0, delay=4.0)  # client gives up at 2 s
    with BrokerProcess(broker_settings(site, database_url), tmp_path / "broker") as broker:
        client = BrokerClient(broker.url)
        layer = unleash([site.skaha], slow, seed=1, only=r"^POST /skaha/v1/session$")["skaha"]
        uuid = client.open(job_request(site, 0))
        while not layer.done["slow"]:  # the first launch is on its way, slowly
            time.sleep(0.05)
        calm([site.skaha])
        doc = client.sessions([uuid], timeout=60)[uuid]
        assert doc["phase"] == "COMPLETED", messages(doc)
        deadline = time.monotonic() + 30
        while not layer.over["slow"]:  # ... and has been processed by now
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # a job started by it writes its log
    runs = sorted((site.root / "skaha" / "logs").glob("*.log"))  # one per Skaha session made
    assert len(runs) == 1, [run.read_text()[:200] for run in runs]
