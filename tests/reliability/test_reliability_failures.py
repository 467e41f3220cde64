"""A permanent failure in each preparation step in turn (a Rucio rule that gets STUCK, a copy
whose source does not exist, an image that is neither at the site nor upstream, a session
Skaha refuses with 400): the session is FAILED within a bound, with a message that names the
step and the service, and what it held is free again. The broker runs as its own process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from reliability_broker import BrokerProcess
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

FAIL_WITHIN = 20.0
"""Seconds from acceptance by which a session with a permanent failure must be FAILED."""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SiteRig]:
    stuck = DemoFile("stuck-000.fits", 16 * 1024)
    rig = start_site(tmp_path / "site", 4, extra_files=[stuck])
    rig.shared.catalogue.config.failures.append(TransferFailure(did="demo:stuck-*"))
    try:
        yield rig
    finally:
        rig.stop()


def test_a_permanent_failure_in_each_step_fails_its_session_and_frees_its_capacity(
    site: SiteRig, tmp_path: Path, database_url: str
) -> None:
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
            asked = time.time()
            accepted[step] = (client.open(doc), asked)
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
