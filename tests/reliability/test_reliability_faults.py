"""Faults at the site: transient ones are ridden out, permanent ones fail the session quickly,
name the step and free its capacity. The broker runs as its own process; the emulated site
services run here, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from reliability_broker import BrokerProcess
from reliability_chaos import ChaosMix, FlakyPort, calm, unleash
from reliability_crash import EXPECTED
from reliability_site import (
    BrokerClient,
    broker_settings,
    job_request,
    messages,
    start_site,
    whole_site,
)

from worksteps.emulators.rig import DemoFile, SiteRig
from worksteps.emulators.rucio.config import TransferFailure
from worksteps.schema import kinds

SESSIONS = 50
CHAOS = ChaosMix(errors=0.08, late=0.04, slow=0.04, hang=0.04, delay=4.0)
"""A fifth of the calls to every site service fail: 5xx at once, or no answer within the
broker's call timeout (3 s; each client gives up after 2 s)."""
CHAOTIC = ("skaha", "rucio", "preparedata", "cavern", "harbor", "upstream")
FAIL_WITHIN = 20.0
"""Seconds from acceptance by which a session with a permanent failure must be FAILED."""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SiteRig]:
    stuck = DemoFile("stuck-000.fits", 16 * 1024)
    rig = start_site(tmp_path / "site", SESSIONS, extra_files=[stuck])
    try:
        yield rig
    finally:
        rig.stop()


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
    settings = broker_settings(site, database_url)
    settings = settings.model_copy(update={"services": relayed})
    try:
        with BrokerProcess(settings, tmp_path / "broker") as broker:
            client = BrokerClient(broker.url)
            uuids = [client.open(job_request(site, i)) for i in range(SESSIONS)]
            docs = client.sessions(uuids, timeout=240)
            why = {u: f"{d['phase']}: {messages(d)}" for u, d in docs.items()}
            assert {d["phase"] for d in docs.values()} == {"COMPLETED"}, why
            wrong = {u: h for u in uuids if (h := client.phases(u)) != EXPECTED}
            assert not wrong, wrong
    finally:
        calm(chaotic)
        for relay in relays.values():
            relay.stop()
    # the faults really happened, at every service and of every kind
    for name, layer in layers.items():
        faults = {k: n for k, n in layer.done.items() if k != "served"}
        assert set(faults) == {"errors", "late", "slow", "hang"}, (name, layer.done)
    for name, relay in relays.items():
        assert relay.counts["outages"] > 0 and relay.counts["reset"] > 0, (name, relay.counts)


def test_a_permanent_failure_in_each_step_fails_its_session_and_frees_its_capacity(
    site: SiteRig, tmp_path: Path, database_url: str
) -> None:
    site.shared.catalogue.config.failures.append(TransferFailure(did="demo:stuck-*"))
    registry = site.harbor.url.removeprefix("http://")
    stuck = {"kind": kinds.DATA_RUCIO, "meta": {"name": "stuck"}}
    stuck["rucio"] = {"scope": "demo", "object": "stuck-000.fits"}
    missing = {"kind": kinds.DATA_SIMPLE, "meta": {"name": "missing"}}
    missing["location"] = f"{site.door.url}/rse/REL/nothing-here.fits"
    failing = {  # step: (request, what the message must say besides the step)
        "stage": (job_request(site, 0, cores=8, data=[stuck]), "rucio"),
        "place": (job_request(site, 1, cores=8, data=[missing]), "cavern"),
        "image": (job_request(site, 2, cores=8, image=f"{registry}/jobs/absent:1.0"), "harbor"),
        "launch": (job_request(site, 3, cores=32), "skaha"),  # Skaha offers at most 16 cores
    }
    with BrokerProcess(broker_settings(site, database_url), tmp_path / "broker") as broker:
        client = BrokerClient(broker.url)
        accepted: dict[str, tuple[str, float]] = {}
        for step, (doc, _) in failing.items():
            accepted[step] = (client.open(doc), time.time())
        assert client.offer(whole_site(site))["result"] == "NO", "the four hold capacity"
        docs = client.sessions([u for u, _ in accepted.values()], timeout=FAIL_WITHIN + 10)
        for step, (uuid, at) in accepted.items():
            doc = docs[uuid]
            assert doc["phase"] == "FAILED", (step, doc["phase"], messages(doc))
            failed = next(e for e in client.events(uuid) if e.get("phase") == "FAILED")
            assert failed["message"].startswith(step), (step, failed["message"])
            assert failing[step][1] in failed["message"], (step, failed["message"])
            took = datetime.fromisoformat(failed["time"]).timestamp() - at
            assert took < FAIL_WITHIN, (step, took)
        # all four released what they held: the whole site can be offered at once again
        assert client.offer(whole_site(site))["result"] == "YES"
