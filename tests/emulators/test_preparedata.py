"""The PrepareData emulator over real HTTP, staging through the site's emulated Rucio.

A task's course: PENDING for ``queue_seconds``, then the Rucio rule brings the data to the
site's RSE, then each file is copied into ``<home>/<user>/<destination>``. A settable clock
makes every step exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopback_support import Clock, Switchboard
from worksteps.emulators import preparedata, rucio
from worksteps.emulators.preparedata import PrepareDataConfig, StatusNames
from worksteps.emulators.rucio import (
    DatasetConfig,
    FileConfig,
    LinkConfig,
    RSEConfig,
    RucioCatalogue,
    RucioConfig,
    TransferFailure,
    deterministic_path,
)

MB = 1_000_000
REMOTE, SITE = "SRC-REMOTE-T1", "SRC-SITE-T2"
ALICE, BOB = {"Authorization": "Bearer tok-alice"}, {"Authorization": "Bearer tok-bob"}


def rucio_config(root: Path, **changes: Any) -> RucioConfig:
    """f1 (1 MB) and f2 (2 MB) are remote, behind a 1 MB/s link; ``local`` is at the site."""
    values: dict[str, Any] = {
        "rses": [
            RSEConfig(name=REMOTE, site="far", root=root / "remote"),
            RSEConfig(name=SITE, site="here", root=root / "site"),
        ],
        "files": [
            FileConfig(scope="user", name="f1", bytes=1 * MB, rses=[REMOTE]),
            FileConfig(scope="user", name="f2", bytes=2 * MB, rses=[REMOTE]),
            FileConfig(scope="user", name="local", bytes=MB // 2, rses=[SITE]),
        ],
        "datasets": [DatasetConfig(scope="user", name="pair", files=["f1", "f2"])],
        "links": [LinkConfig(source=REMOTE, destination=SITE, bytes_per_second=1 * MB)],
    }
    values.update(changes)
    return RucioConfig(**values)


@dataclass
class Site:
    http: httpx.Client
    rucio_url: str
    catalogue: RucioCatalogue
    clock: Clock
    home: Path

    def submit(self, items: list[list[str]], headers: dict[str, str] = ALICE) -> str:
        response = self.http.post("/preparedata", json=items, headers=headers)
        assert response.status_code == 200, response.text
        return str(response.json()["task_id"])

    def poll(self, task_id: str, headers: dict[str, str] = ALICE) -> dict[str, Any]:
        response = self.http.get(f"/preparedata/{task_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def site(switchboard: Switchboard, tmp_path: Path) -> Iterator[Any]:
    pd_switch, rc_switch = switchboard("preparedata"), switchboard("rucio")
    with httpx.Client(base_url=pd_switch.url) as http:

        def start(config: RucioConfig | None = None, **changes: Any) -> Site:
            clock = Clock()
            catalogue = RucioCatalogue(config or rucio_config(tmp_path), clock)
            values: dict[str, Any] = {
                "rse": SITE,
                "home_root": tmp_path / "home",
                "home_prefix": "/cavern/home",
                "tokens": {"tok-alice": "alice", "tok-bob": "bob"},
                "queue_seconds": 1.0,
                "copy_bandwidth": 2 * MB,
            }
            values.update(changes)
            pd_switch.app = preparedata.create_app(PrepareDataConfig(**values), catalogue)
            rc_switch.app = rucio.create_app(catalogue.config, catalogue)
            return Site(http, rc_switch.url, catalogue, clock, tmp_path / "home")

        yield start


def item(did: str, destination: str = "./run-1") -> list[str]:
    scope, name = did.split(":")
    return [did, deterministic_path(scope, name), destination]


def progress(body: dict[str, Any]) -> tuple[str, int, int]:
    return body["status"], body["progress"]["bytes_done"], body["progress"]["bytes_total"]


def test_task_waits_then_replicates_then_copies_home(site: Any) -> None:
    s = site()
    task_id = s.submit([item("user:f1")])
    assert progress(s.poll(task_id)) == ("PENDING", 0, MB)
    s.clock.advance(1.5)  # queued 1 s; the transfer (1 MB at 1 MB/s) is half way
    assert progress(s.poll(task_id)) == ("STARTED", 0, MB)
    s.clock.advance(0.75)  # arrived at the RSE at 2.0 s; copying at 2 MB/s for 0.25 s
    assert progress(s.poll(task_id)) == ("STARTED", MB // 2, MB)
    staged = s.home / "alice" / "run-1" / "f1"
    assert not staged.exists()
    s.clock.advance(0.25)
    done = s.poll(task_id)
    assert progress(done) == ("SUCCESS", MB, MB)
    assert done["progress"]["percent"] == 100.0
    assert done["destination"] == "/cavern/home/alice/run-1"
    replica = s.catalogue.replica_path(SITE, "user", "f1")
    assert staged.read_bytes() == replica.read_bytes()

    [rule_id] = done["rules"]  # the rule is a real rule of the site's Rucio
    token = httpx.get(
        f"{s.rucio_url}/auth/userpass",
        headers={"X-Rucio-Username": "ddmlab", "X-Rucio-Password": "secret"},
    ).headers["X-Rucio-Auth-Token"]
    rule = httpx.get(f"{s.rucio_url}/rules/{rule_id}", headers={"X-Rucio-Auth-Token": token})
    assert (rule.json()["account"], rule.json()["state"]) == ("preparedata", "OK")


def test_a_dataset_is_copied_file_by_file(site: Any) -> None:
    s = site(queue_seconds=0.0)
    task_id = s.submit([item("user:pair", "out")])
    s.clock.advance(1.5)  # f1 at the RSE after 1 s, copied by 1.5 s; f2 arrives at 3 s
    assert progress(s.poll(task_id)) == ("STARTED", MB, 3 * MB)
    assert s.poll(task_id)["progress"]["files_done"] == 1
    s.clock.advance(2.5)  # f2 copied by 4 s
    assert progress(s.poll(task_id)) == ("SUCCESS", 3 * MB, 3 * MB)
    assert sorted(p.name for p in (s.home / "alice" / "out").iterdir()) == ["f1", "f2"]


def test_data_already_at_the_site_is_only_copied(site: Any) -> None:
    s = site(queue_seconds=0.0)
    task_id = s.submit([item("user:local")])
    s.clock.advance(0.25)
    assert progress(s.poll(task_id)) == ("SUCCESS", MB // 2, MB // 2)


def test_two_tasks_on_the_same_data_share_one_rule(site: Any) -> None:
    s = site()
    first = s.poll(s.submit([item("user:f1", "a")]))["rules"]
    second = s.poll(s.submit([item("user:f1", "b")], headers=BOB), headers=BOB)["rules"]
    assert first == second


def test_failed_transfer_fails_the_task(site: Any, tmp_path: Path) -> None:
    failure = TransferFailure(did="user:f2", message="TRANSFER [5] no space left")
    s = site(rucio_config(tmp_path, failures=[failure]), queue_seconds=0.0)
    task_id = s.submit([item("user:pair")])
    s.clock.advance(2.9)
    assert s.poll(task_id)["status"] == "STARTED"
    s.clock.advance(0.1)
    failed = s.poll(task_id)
    assert (failed["status"], failed["error"]) == ("FAILURE", "TRANSFER [5] no space left")


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (["user:missing", "", "x"], "not found"),
        (["nodid", "", "x"], "not a DID"),
        (["user:f1", "user/00/00/f1", "x"], "not the replica path"),
    ],
)
def test_bad_data_is_accepted_then_fails(site: Any, entry: list[str], error: str) -> None:
    s = site()
    failed = s.poll(s.submit([entry]))
    assert failed["status"] == "FAILURE"
    assert error in failed["error"]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ([["user:f1", "", "x"]], {}, 401),
        ([["user:f1", "", "x"]], {"Authorization": "Bearer wrong"}, 401),
        ({"did": "user:f1"}, ALICE, 400),
        ([["user:f1", "x"]], ALICE, 400),
        ([["user:f1", "", "../../etc"]], ALICE, 400),
        ([["user:f1", "", "/abs"]], ALICE, 400),
        ([["user:f1", "", "a"], ["user:f2", "", "b"]], ALICE, 400),
    ],
)
def test_bad_requests_are_refused(
    site: Any, body: Any, headers: dict[str, str], status: int
) -> None:
    s = site()
    response = s.http.post("/preparedata", json=body, headers=headers)
    assert response.status_code == status
    assert "detail" in response.json()
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_tasks_are_private_to_their_user(site: Any) -> None:
    s = site()
    task_id = s.submit([item("user:f1")])
    assert s.http.get(f"/preparedata/{task_id}", headers=BOB).status_code == 404
    assert s.http.get("/preparedata/unknown", headers=ALICE).status_code == 404


def test_status_names_are_configurable(site: Any) -> None:
    names = StatusNames(pending="QUEUED", active="RUNNING", done="DONE", failed="ERROR")
    s = site(statuses=names)
    task_id = s.submit([item("user:local")])
    assert s.poll(task_id)["status"] == "QUEUED"
    s.clock.advance(1.1)
    assert s.poll(task_id)["status"] == "RUNNING"
    s.clock.advance(1.0)
    assert s.poll(task_id)["status"] == "DONE"
