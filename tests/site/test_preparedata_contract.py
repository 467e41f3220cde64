"""Contract: PrepareDataStaging (httpx) against the PrepareData emulator and its site's Rucio."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from loopback_support import Clock, Switchboard
from worksteps.core.serving import serve_in_thread
from worksteps.emulators import preparedata, rucio
from worksteps.emulators.preparedata import PrepareDataConfig, StatusNames
from worksteps.emulators.rucio import (
    FileConfig,
    LinkConfig,
    RSEConfig,
    RucioCatalogue,
    RucioConfig,
    TransferFailure,
    deterministic_path,
)
from worksteps.site.errors import PermanentSiteError, SiteNotFound, TransientSiteError
from worksteps.site.preparedata import PrepareDataStaging, rucio_path
from worksteps.site.rucio import RucioStaging
from worksteps.site.staging import DID, DataStaging, StageRequest, StageState

MB = 1_000_000
REMOTE, SITE = "SRC-REMOTE-T1", "SRC-SITE-T2"
F1, BROKEN = DID("user", "f1"), DID("user", "broken")


def rucio_config(root: Path, bandwidth: float = 1 * MB) -> RucioConfig:
    """f1 (2 MB) is remote behind a 1 MB/s link; transfers of ``broken`` fail."""
    return RucioConfig(
        rses=[
            RSEConfig(name=REMOTE, site="far", root=root / "remote"),
            RSEConfig(name=SITE, site="here", root=root / "site"),
        ],
        files=[
            FileConfig(scope="user", name="f1", bytes=2 * MB, rses=[REMOTE]),
            FileConfig(scope="user", name="broken", bytes=10, rses=[REMOTE]),
        ],
        links=[LinkConfig(source=REMOTE, destination=SITE, bytes_per_second=bandwidth)],
        failures=[TransferFailure(did="user:broken", message="TRANSFER [2] source gone")],
    )


@dataclass
class Site:
    url: str
    rucio_url: str
    clock: Clock
    home: Path

    def adapter(self, token: Any = "tok-alice", **kwargs: Any) -> PrepareDataStaging:
        return PrepareDataStaging(self.url, token, **kwargs)

    def faults(self, *rules: dict[str, Any]) -> None:
        assert httpx.put(f"{self.url}/_emulator/faults", json=list(rules)).status_code == 200


@pytest.fixture
def site(switchboard: Switchboard, tmp_path: Path) -> Any:
    pd_switch, rc_switch = switchboard("preparedata"), switchboard("rucio")

    def start(clock: Any = None, bandwidth: float = 1 * MB, **changes: Any) -> Site:
        clock = clock or Clock()
        catalogue = RucioCatalogue(rucio_config(tmp_path, bandwidth), clock)
        values: dict[str, Any] = {
            "rse": SITE,
            "home_root": tmp_path / "home",
            "home_prefix": "/cavern/home",
            "tokens": {"tok-alice": "alice"},
            "queue_seconds": 1.0,
            "copy_bandwidth": 4 * MB,
        }
        values.update(changes)
        pd_switch.app = preparedata.create_app(PrepareDataConfig(**values), catalogue)
        rc_switch.app = rucio.create_app(catalogue.config, catalogue)
        return Site(pd_switch.url, rc_switch.url, clock, tmp_path / "home")

    return start


def staged_bytes(path: Path) -> bytes:
    return path.read_bytes()


async def test_it_is_a_data_staging(site: Any) -> None:
    assert isinstance(site().adapter(), DataStaging)


async def test_source_path_follows_the_emulated_rse_layout() -> None:
    assert rucio_path(F1) == deterministic_path("user", "f1")


async def test_stage_waits_moves_and_lands_in_the_users_home(site: Any) -> None:
    s = site()
    staging = s.adapter()
    task_id = await staging.stage(StageRequest((F1,), "ws-7/input"))
    pending = await staging.status(task_id)
    assert (pending.state, pending.bytes_done, pending.bytes_total) == (
        StageState.PENDING,
        0,
        2 * MB,
    )
    s.clock.advance(3.25)  # queued 1 s, at the RSE after 3 s, a quarter copied (4 MB/s)
    active = await staging.status(task_id)
    assert (active.state, active.bytes_done, active.percent) == (StageState.ACTIVE, MB, 50.0)
    assert active.location is None
    s.clock.advance(0.25)
    done = await staging.status(task_id)
    assert (done.state, done.bytes_done, done.percent) == (StageState.DONE, 2 * MB, 100.0)
    assert done.location == "/cavern/home/alice/ws-7/input"
    data = staged_bytes(s.home / "alice" / "ws-7" / "input" / "f1")
    assert len(data) == 2 * MB
    assert data.startswith(b"user:f1\n")


async def test_failed_transfer_is_failed_with_the_services_message(site: Any) -> None:
    s = site(queue_seconds=0.0)
    staging = s.adapter()
    task_id = await staging.stage(StageRequest((BROKEN,), "b"))
    s.clock.advance(1.0)
    failed = await staging.status(task_id)
    assert (failed.state, failed.message) == (StageState.FAILED, "TRANSFER [2] source gone")


async def test_a_minimal_service_answer_is_enough(site: Any) -> None:
    s = site(queue_seconds=0.0, extensions=False)
    staging = s.adapter()
    task_id = await staging.stage(StageRequest((F1,), "plain"))
    active = await staging.status(task_id)
    assert (active.state, active.bytes_done, active.percent) == (StageState.ACTIVE, None, None)
    s.clock.advance(10)
    done = await staging.status(task_id)
    assert (done.state, done.percent, done.location) == (StageState.DONE, 100.0, None)


async def test_other_status_vocabularies_can_be_mapped(site: Any) -> None:
    names = StatusNames(pending="QUEUED", active="RUNNING", done="DONE", failed="ERROR")
    s = site(statuses=names)
    vocabulary = {
        "QUEUED": StageState.PENDING,
        "RUNNING": StageState.ACTIVE,
        "DONE": StageState.DONE,
        "ERROR": StageState.FAILED,
    }
    mapped, default = s.adapter(states=vocabulary), s.adapter()
    task_id = await mapped.stage(StageRequest((F1,), "v"))
    assert (await mapped.status(task_id)).state is StageState.PENDING
    unknown = await default.status(task_id)
    assert (unknown.state, unknown.message) == (
        StageState.ACTIVE,
        "PrepareData reports an unknown status 'QUEUED'",
    )


async def test_the_token_is_asked_for_on_every_call(site: Any) -> None:
    s = site()
    handed_out: list[str] = []

    def token() -> str:
        handed_out.append("tok-alice")
        return "tok-alice"

    staging = s.adapter(token)
    await staging.status(await staging.stage(StageRequest((F1,), "t")))
    assert len(handed_out) == 2


async def test_errors_are_classified(site: Any) -> None:
    s = site()
    staging = s.adapter()
    with pytest.raises(SiteNotFound):
        await staging.status("no-such-task")
    with pytest.raises(PermanentSiteError) as refused:
        await s.adapter("wrong").stage(StageRequest((F1,), "x"))
    assert refused.value.status == 401
    assert refused.value.message == "a valid bearer token is required"
    s.faults({"method": "POST", "path": "^/preparedata", "error_rate": 1.0, "status": 503})
    with pytest.raises(TransientSiteError) as unavailable:
        await staging.stage(StageRequest((F1,), "x"))
    assert unavailable.value.status == 503


async def test_unreachable_service_is_transient() -> None:
    with serve_in_thread(Starlette()) as gone:
        url = gone.url
    with pytest.raises(TransientSiteError):
        await PrepareDataStaging(url, "t").stage(StageRequest((F1,), "x"))


async def test_replicas_come_from_the_sites_rucio(site: Any) -> None:
    s = site()
    catalogue = RucioStaging(
        host=s.rucio_url, account="root", username="ddmlab", password="secret", rse_expression=SITE
    )
    replicas = await s.adapter(replicas_from=catalogue).replicas(F1)
    assert [(r.rse, r.bytes) for r in replicas] == [(REMOTE, 2 * MB)]
    with pytest.raises(PermanentSiteError):
        await s.adapter().replicas(F1)


async def test_cancel_is_not_offered(site: Any) -> None:
    staging = site().adapter()
    assert await staging.cancel(await staging.stage(StageRequest((F1,), "c"))) is False


async def test_real_clock_staging_completes(site: Any) -> None:
    s = site(clock=time.time, bandwidth=20 * MB, queue_seconds=0.05, copy_bandwidth=50 * MB)
    staging = s.adapter()
    task_id = await staging.stage(StageRequest((F1,), "real"))
    deadline = time.monotonic() + 10
    while (await staging.status(task_id)).state is not StageState.DONE:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
