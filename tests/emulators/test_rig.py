"""The site rig: one consistent emulated site, reached through the real adapters.

What is checked here is the rig's own promise (layout, catalogue, images, one identity,
configurable speeds, a clean stop); the whole preparation chain runs in
``tests/site/test_services.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from worksteps.emulators.rig import (
    DEFAULT_FILES,
    DEFAULT_IMAGES,
    DemoDataset,
    DemoFile,
    RigImage,
    SiteRig,
    demo_text,
    start_site_rig,
)
from worksteps.site.images import ImageRef
from worksteps.site.services import open_site_services
from worksteps.site.sessions import SessionKind, SessionSpec, SessionStatus
from worksteps.site.staging import DID, StageRequest, StageState

T = TypeVar("T")

FILES = (
    DemoFile("both.fits", 1200, at_site=True),
    DemoFile("far.fits", 2000),
    DemoFile("near.fits", 800, at_site=True, remote=False),
)
IMAGES = (
    RigImage("skaha/terminal", "1.1.2", ("headless",), layers=(300,)),
    RigImage("astro/carta", "4.1", ("carta",), layers=(400, 500), cached=False),
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteRig]:
    with start_site_rig(
        "rig-a", tmp_path_factory.mktemp("rig"), files=FILES, images=IMAGES, start_latency=0.0
    ) as running:
        yield running


async def until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], limit: float) -> T:
    deadline = time.monotonic() + limit
    while not done(value := await probe()):
        assert time.monotonic() < deadline, f"still {value}"
        await asyncio.sleep(0.03)
    return value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_one_identity_and_every_url(rig: SiteRig) -> None:
    settings = rig.services_settings
    token = settings.skaha.token.get_secret_value()
    assert settings.cavern.token.get_secret_value() == token
    assert settings.preparedata is not None
    assert settings.preparedata.token.get_secret_value() == token
    assert settings.user == rig.user == settings.rucio.account == settings.harbor.username
    assert settings.rucio.rse == rig.site_rse == "RIG-A"
    assert settings.skaha.url == rig.skaha.url + "/skaha/v1"
    assert settings.harbor.url == rig.harbor.url
    assert set(rig.emulators) == {
        "skaha",
        "rucio",
        "preparedata",
        "cavern",
        "harbor",
        "upstream",
        "door",
    }
    with httpx.Client(trust_env=False) as http:
        images = http.get(
            settings.skaha.url + "/image", headers={"Authorization": "Bearer " + token}
        )
        refused = http.get(settings.skaha.url + "/image", headers={"Authorization": "Bearer x"})
    host = rig.harbor.url.removeprefix("http://")
    assert sorted(i["id"] for i in images.json()) == [
        f"{host}/astro/carta:4.1",
        f"{host}/skaha/terminal:1.1.2",
    ]
    assert refused.status_code == 401


def test_cavern_homes_are_the_sessions_homes(rig: SiteRig) -> None:
    shared = (rig.root / "skaha" / "home").resolve()
    assert shared == (rig.root / "storage" / "home").resolve()
    assert rig.home.is_dir() and rig.home.parent.resolve() == shared


async def test_catalogue_replicas_are_served_over_http(rig: SiteRig) -> None:
    async with await open_site_services(rig.services_settings) as services:
        where = {
            f.name: {r.rse: r for r in await services.staging.replicas(DID("demo", f.name))}
            for f in FILES
        }
    assert {name: set(rses) for name, rses in where.items()} == {
        "both.fits": {rig.site_rse, rig.remote_rse},
        "far.fits": {rig.remote_rse},
        "near.fits": {rig.site_rse},
    }
    async with httpx.AsyncClient(trust_env=False) as http:
        for demo in FILES:
            for replica in where[demo.name].values():
                assert replica.url is not None and replica.url.startswith(rig.door.url)
                body = (await http.get(replica.url)).content
                assert body == demo_text("demo", demo.name, demo.size)
                assert replica.bytes == demo.size
        escape = await http.get(rig.door.url + "/rse/RIG-A/%2E%2E/%2E%2E/catalogue/far.fits")
        assert escape.status_code == 404


async def test_cached_images_are_here_and_the_rest_upstream(rig: SiteRig) -> None:
    host = rig.harbor.url.removeprefix("http://")
    async with await open_site_services(rig.services_settings) as services:
        here = await services.images.inspect(ImageRef.parse(f"{host}/skaha/terminal:1.1.2"))
        there = await services.images.inspect(ImageRef.parse(f"{host}/astro/carta:4.1"))
    assert here.present and here.reference is not None and here.reference.startswith(host)
    assert not there.present and there.digest is not None
    assert there.layers_size is not None and there.layers_size > 900  # layers and config


def test_defaults_hold_local_and_remote_only_data() -> None:
    assert any(f.remote and not f.at_site for f in DEFAULT_FILES)
    assert any(f.at_site for f in DEFAULT_FILES)
    assert {i.cached for i in DEFAULT_IMAGES} == {True, False}


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: DemoFile("x", 0), "size"),
        (lambda: DemoFile("x", 10, at_site=False, remote=False), "replica"),
        (lambda: DemoFile("../x", 10), "name"),
        (lambda: DemoDataset("set", ()), "at least one file"),
        (lambda: RigImage("skaha/carta/viewer", "1", ("carta",)), "one '/'"),
        (lambda: RigImage("skaha/carta", "1", ("browser",)), "unknown session kinds"),
    ],
)
def test_bad_catalogue_entries_are_refused(make: Callable[[], object], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        make()


def _servers() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("uvicorn-"))


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"user": "Not A User"}, "Rucio account"),
        ({"site_rse": "lower-case"}, "RSE name"),
        ({"site_rse": "SAME", "remote_rse": "SAME"}, "must differ"),
        ({"files": (DemoFile("a", 1),), "datasets": (DemoDataset("d", ("b",)),)}, "unknown"),
    ],
)
def test_bad_rig_options_are_refused(tmp_path: Path, options: dict[str, Any], why: str) -> None:
    before = _servers()
    with pytest.raises(ValueError, match=why):
        start_site_rig("x", tmp_path, **options)
    assert _servers() == before


def test_a_failed_start_stops_what_it_started(tmp_path: Path) -> None:
    before = _servers()
    twice = (RigImage("skaha/a", "1", ("headless",)), RigImage("skaha/a", "1", ("headless",)))
    with pytest.raises(ValueError, match="configured twice"):
        start_site_rig("x", tmp_path, images=twice)
    assert _servers() == before


def _pids_running(argv: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == argv:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def test_speeds_are_configurable_and_stop_kills_sessions(tmp_path: Path) -> None:
    rig = start_site_rig(
        "rig-b",
        tmp_path,
        files=(DemoFile("slow.fits", 3000),),
        datasets=(DemoDataset("one", ("slow.fits",)),),
        images=IMAGES,
        bandwidth=10_000,  # 0.3 s for the file
        start_latency=0.4,
    )
    argv = b"sleep\x00317\x00"
    try:
        async with await open_site_services(rig.services_settings) as services:
            ref = await services.staging.stage(StageRequest((DID("demo", "one"),), "ws"))
            first = await services.staging.status(ref)
            assert first.state is StageState.ACTIVE and first.bytes_done == 0
            done = await until(
                lambda: services.staging.status(ref), lambda s: s.state is StageState.DONE, 5
            )
            assert done.bytes_done == 3000

            host = rig.harbor.url.removeprefix("http://")
            image = f"{host}/skaha/terminal:1.1.2"
            spec = SessionSpec("sleeper", SessionKind.HEADLESS, image, cmd="sleep", args=("317",))
            session_id = await services.sessions.launch(spec)
            assert (await services.sessions.get(session_id)).status is SessionStatus.PENDING
            await until(
                lambda: services.sessions.get(session_id),
                lambda s: s.status is SessionStatus.RUNNING,
                5,
            )
            assert len(_pids_running(argv)) == 1
    finally:
        rig.stop()
    assert _pids_running(argv) == []
    rig.stop()  # a second stop is harmless
    async with httpx.AsyncClient(trust_env=False) as http:
        for emulator in rig.emulators.values():
            with pytest.raises(httpx.ConnectError):
                await http.get(emulator.url + "/_emulator/calls", timeout=2)
