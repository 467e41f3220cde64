"""Contract: RucioStaging, driving the real rucio-clients ``Client``, against the Rucio emulator.

Every client call the adapter makes (add_replication_rule, list_did_rules, get_replication_rule,
list_replica_locks, list_files, list_replicas, delete_replication_rule) crosses real HTTP here.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from loopback_support import Clock, Switchboard
from worksteps.core.serving import serve_in_thread
from worksteps.emulators.rucio import (
    DatasetConfig,
    FileConfig,
    LinkConfig,
    RSEConfig,
    RucioCatalogue,
    RucioConfig,
    TransferFailure,
    create_app,
)
from worksteps.site.errors import PermanentSiteError, SiteNotFound, TransientSiteError
from worksteps.site.rucio import RucioStaging
from worksteps.site.staging import (
    DID,
    DataStaging,
    InvalidDID,
    StageRequest,
    StageState,
    StageStatus,
)

MB = 1_000_000
HOME, SITE = "SRC-HOME-T1", "SRC-SITE-T2"
DS, F1, F2, MISSING = (
    DID("user", "ds"),
    DID("user", "f1"),
    DID("user", "f2"),
    DID("user", "missing"),
)


def config(root: Path, **changes: Any) -> RucioConfig:
    """ds = f1 (1 MB) + f2 (2 MB), both at HOME; HOME→SITE runs at 1 MB/s."""
    values: dict[str, Any] = {
        "rses": [
            RSEConfig(name=HOME, site="home", root=root / "home"),
            RSEConfig(name=SITE, site="site", root=root / "site"),
        ],
        "files": [
            FileConfig(scope="user", name="f1", bytes=1 * MB, rses=[HOME]),
            FileConfig(scope="user", name="f2", bytes=2 * MB, rses=[HOME]),
        ],
        "datasets": [DatasetConfig(scope="user", name="ds", files=["f1", "f2"])],
        "links": [LinkConfig(source=HOME, destination=SITE, bytes_per_second=1 * MB)],
    }
    values.update(changes)
    return RucioConfig(**values)


@dataclass
class Rucio:
    url: str
    catalogue: RucioCatalogue
    clock: Clock

    def adapter(self, password: str = "secret") -> RucioStaging:
        return RucioStaging(
            host=self.url,
            account="root",
            username="ddmlab",
            password=password,
            rse_expression=SITE,
        )

    def faults(self, *rules: dict[str, Any]) -> None:
        assert httpx.put(f"{self.url}/_emulator/faults", json=list(rules)).status_code == 200


def emulator_calls(url: str) -> dict[str, int]:
    calls: dict[str, int] = httpx.get(f"{url}/_emulator/calls").json()
    return calls


def file_size(url: str) -> int:
    assert url.startswith("file://")
    return Path(url.removeprefix("file://")).stat().st_size


@pytest.fixture
def rucio(switchboard: Switchboard, tmp_path: Path) -> Any:
    switch = switchboard("rucio")

    def start(cfg: RucioConfig | None = None, clock: Any = None) -> Rucio:
        cfg = cfg or config(tmp_path)
        clock = clock or Clock()
        catalogue = RucioCatalogue(cfg, clock)
        switch.app = create_app(cfg, catalogue)
        return Rucio(switch.url, catalogue, clock)

    return start


async def test_it_is_a_data_staging(rucio: Any) -> None:
    assert isinstance(rucio().adapter(), DataStaging)


async def test_replicas_are_listed_per_file_with_size_and_url(rucio: Any) -> None:
    r = rucio()
    replicas = await r.adapter().replicas(DS)
    assert [(x.did, x.rse, x.bytes) for x in replicas] == [(F1, HOME, MB), (F2, HOME, 2 * MB)]
    for replica in replicas:
        assert replica.url is not None
        assert file_size(replica.url) == replica.bytes


async def test_stage_moves_from_active_to_done_with_bytes(rucio: Any) -> None:
    r = rucio()
    staging = r.adapter()
    ref = await staging.stage(StageRequest((DS,), "ws-1/input", lifetime=3600))
    status = await staging.status(ref)
    assert (status.state, status.bytes_done, status.bytes_total) == (StageState.ACTIVE, 0, 3 * MB)
    assert status.percent == 0.0
    assert status.message == f"0 of 2 files replicated to {SITE}"

    r.clock.advance(1.0)  # f1 (1 MB at 1 MB/s) has arrived
    status = await staging.status(ref)
    assert (status.state, status.bytes_done) == (StageState.ACTIVE, MB)
    assert status.percent == pytest.approx(100 / 3)

    r.clock.advance(2.0)
    done = await staging.status(ref)
    assert (done.state, done.bytes_done, done.percent, done.location) == (
        StageState.DONE,
        3 * MB,
        100.0,
        SITE,
    )
    assert len(done.urls) == 2
    assert [file_size(u) for u in done.urls] == [MB, 2 * MB]
    [rule] = r.catalogue.rules.values()
    assert rule.options["comment"] == "worksteps:ws-1/input"
    assert rule.expires_at == rule.created_at + 3600


async def test_staging_again_returns_the_same_reference(rucio: Any) -> None:
    r = rucio()
    staging = r.adapter()
    request = StageRequest((F1, F2), "again")
    first = await staging.stage(request)
    assert len(first.split(",")) == 2
    assert await staging.stage(request) == first
    assert await r.adapter().stage(request) == first  # a restarted broker, a new client
    assert sorted(r.catalogue.rules) == sorted(first.split(","))


async def test_a_stuck_rule_is_reported_failed(rucio: Any, tmp_path: Path) -> None:
    failure = TransferFailure(did="user:f2", message="TRANSFER [28] no space left on device")
    r = rucio(config(tmp_path, failures=[failure]))
    staging = r.adapter()
    ref = await staging.stage(StageRequest((DS,), "stuck"))
    r.clock.advance(3.0)
    status = await staging.status(ref)
    assert (status.state, status.bytes_done) == (StageState.FAILED, MB)
    assert status.message == "TRANSFER [28] no space left on device"


async def test_unknown_did_fails_and_leaves_no_rule_behind(rucio: Any) -> None:
    r = rucio()
    staging = r.adapter()
    with pytest.raises(SiteNotFound) as caught:
        await staging.stage(StageRequest((F1, MISSING), "partial"))
    assert caught.value.service == "rucio"
    assert caught.value.operation == "stage"
    assert r.catalogue.rules == {}
    with pytest.raises(SiteNotFound):
        await staging.replicas(MISSING)


async def test_unknown_references_are_not_found(rucio: Any) -> None:
    staging = rucio().adapter()
    with pytest.raises(SiteNotFound):
        await staging.status("0" * 32)
    with pytest.raises(SiteNotFound):
        await staging.status("not-a-rule")


async def test_cancel_deletes_the_rules_and_is_idempotent(rucio: Any) -> None:
    r = rucio()
    staging = r.adapter()
    ref = await staging.stage(StageRequest((F1, F2), "cancelled"))
    assert await staging.cancel(ref) is True
    assert r.catalogue.rules == {}
    with pytest.raises(SiteNotFound):
        await staging.status(ref)
    assert await staging.cancel(ref) is True


async def test_wrong_password_is_permanent(rucio: Any) -> None:
    with pytest.raises(PermanentSiteError) as caught:
        await rucio().adapter(password="wrong").replicas(F1)
    assert not isinstance(caught.value, TransientSiteError)
    assert caught.value.status == 401


async def test_injected_503_is_transient(rucio: Any) -> None:
    r = rucio()
    staging = r.adapter()
    ref = await staging.stage(StageRequest((F1,), "faulty"))
    r.faults({"method": "GET", "path": "^/rules/", "error_rate": 1.0, "status": 503})
    with pytest.raises(TransientSiteError) as caught:
        await staging.status(ref)
    assert caught.value.status == 503
    r.faults()
    assert (await staging.status(ref)).state is StageState.ACTIVE


async def test_503_while_authenticating_is_transient_not_an_auth_failure(rucio: Any) -> None:
    r = rucio()
    r.faults({"path": "^/auth/", "error_rate": 1.0, "status": 503})
    staging = r.adapter()
    with pytest.raises(TransientSiteError) as caught:
        await staging.replicas(F1)
    assert type(caught.value.__cause__).__name__ == "CannotAuthenticate"  # what the client says
    r.faults()
    assert len(await staging.replicas(F1)) == 1


async def test_unreachable_service_is_transient(tmp_path: Path) -> None:
    with serve_in_thread(Starlette()) as gone:
        url = gone.url
    staging = RucioStaging(
        host=url, account="root", username="ddmlab", password="secret", rse_expression=SITE
    )
    with pytest.raises(TransientSiteError):
        await staging.replicas(F1)


async def test_each_adapter_keeps_its_own_token(rucio: Any, tmp_path: Path) -> None:
    """Two Rucio instances, same account name: each adapter authenticates exactly once."""
    first = rucio()
    other_config = config(tmp_path / "other")
    with serve_in_thread(create_app(other_config)) as other:
        one, two = (
            first.adapter(),
            RucioStaging(
                host=other.url,
                account="root",
                username="ddmlab",
                password="secret",
                rse_expression=SITE,
            ),
        )
        for _ in range(2):
            await one.replicas(F1)
            await two.replicas(F1)
        other_calls = emulator_calls(other.url)
    assert emulator_calls(first.url)["GET /auth/userpass"] == 1
    assert other_calls["GET /auth/userpass"] == 1


async def test_real_clock_staging_completes(rucio: Any, tmp_path: Path) -> None:
    r = rucio(config(tmp_path, links=[], default_bandwidth=30 * MB), clock=time.time)
    staging = r.adapter()
    ref = await staging.stage(StageRequest((DS,), "now"))
    deadline = time.monotonic() + 10
    while (status := await staging.status(ref)).state is not StageState.DONE:
        assert status.state is StageState.ACTIVE
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert status.bytes_done == 3 * MB


# -- the staging data types the adapters speak ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("nocolon", "expected 'scope:name'"),
        (":name", "empty scope"),
        ("scope:", "empty name"),
        ("sc ope:name", "scope 'sc ope'"),
        ("a" * 26 + ":name", "1-25 characters"),
        ("user:na me", "name 'na me'"),
        ("user:.hidden", "starting with a letter"),
    ],
)
def test_did_parse_says_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(InvalidDID, match=re.escape(error)):
        DID.parse(text)


@given(
    st.from_regex(r"[A-Za-z0-9_.\-]{1,25}", fullmatch=True),
    st.from_regex(r"[/A-Za-z0-9][/A-Za-z0-9._\-]{0,60}", fullmatch=True),
)
def test_did_round_trips_through_text(scope: str, name: str) -> None:
    did = DID(scope, name)
    assert DID.parse(str(did)) == did
    assert DID.parse(f"  {did} ") == did


def test_stage_request_and_status_invariants() -> None:
    with pytest.raises(ValueError, match="at least one DID"):
        StageRequest((), "x")
    with pytest.raises(ValueError, match="repeat"):
        StageRequest((F1, F1), "x")
    for destination in ("", "/abs", "a/../b"):
        with pytest.raises(ValueError, match="relative path"):
            StageRequest((F1,), destination)
    with pytest.raises(ValueError, match="lifetime"):
        StageRequest((F1,), "x", lifetime=0)
    assert StageStatus(StageState.ACTIVE, 1, 4).percent == 25.0
    assert StageStatus(StageState.ACTIVE).percent is None
    assert StageStatus(StageState.DONE).percent == 100.0
