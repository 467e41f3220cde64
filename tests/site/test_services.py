"""SiteServices: settings that refuse bad values, and the real adapters driven through one rig.

The end-to-end test is the preparation chain the broker's engine runs, every step through a
real adapter and a real client over loopback HTTP: a Rucio rule stages a remote-only file to
the site's RSE, Cavern pulls the staged replica into the service account's area, Harbor
replicates an upstream-only image, and a headless Skaha session started from that image reads
the placed file.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError

from worksteps.emulators.faults import FaultRule
from worksteps.emulators.rig import DemoDataset, DemoFile, RigImage, SiteRig, demo_text
from worksteps.emulators.rig import start_site_rig as start_rig
from worksteps.site.errors import TransientSiteError
from worksteps.site.images import ImageRef, ImageRegistry, PullState
from worksteps.site.services import (
    HarborSettings,
    SiteServicesSettings,
    SkahaSettings,
    open_site_services,
)
from worksteps.site.sessions import SessionKind, SessionService, SessionSpec, SessionStatus
from worksteps.site.staging import DID, DataStaging, StageRequest, StageState
from worksteps.site.storage import TransferPhase, UserStorage

T = TypeVar("T")

FILES = (
    DemoFile("local.fits", 1500, at_site=True),
    DemoFile("remote-a.fits", 3000),
    DemoFile("remote-b.fits", 2200),
)
IMAGES = (
    RigImage("skaha/terminal", "1.1.2", ("headless",), layers=(512,)),
    RigImage("skaha/astroml", "24.07", ("notebook", "headless"), layers=(700, 900), cached=False),
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteRig]:
    root = tmp_path_factory.mktemp("rig")
    with start_rig(
        "Test Site",
        root,
        files=FILES,
        datasets=(DemoDataset("pair", ("remote-a.fits", "remote-b.fits")),),
        images=IMAGES,
        user="svc",
        bandwidth=1e6,
        start_latency=0.0,
        terminating_seconds=0.1,
    ) as running:
        yield running


async def until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], limit: float) -> T:
    """Poll ``probe`` until ``done`` holds (the engine's job; a plain loop suffices here)."""
    deadline = time.monotonic() + limit
    while True:
        value = await probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still {value}"
        await asyncio.sleep(0.05)


def settings_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "site": "a",
        "user": "svc",
        "skaha": {"url": "https://ws.example.org/skaha/v1", "token": "t0ken"},
        "rucio": {
            "host": "https://rucio.example.org",
            "account": "svc",
            "username": "svc",
            "password": "pa55",
            "rse": "SITE-A",
        },
        "cavern": {
            "resource_id": "ivo://example.org/cavern",
            "capabilities_url": "https://ws.example.org/cavern/capabilities",
            "token": "t0ken",
        },
        "harbor": {"url": "https://images.example.org", "username": "svc", "password": "pa55"},
    }
    document.update(changes)
    return document


# -- settings --------------------------------------------------------------------------------


def test_settings_keep_secrets_out_of_text() -> None:
    settings = SiteServicesSettings.model_validate(settings_document())
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "t0ken" not in shown and "pa55" not in shown
    assert settings.skaha.token.get_secret_value() == "t0ken"
    assert settings.preparedata is None
    assert settings.skaha.home_mount == "/arc/home"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("skaha", "url"), "https://ws.example.org/skaha"),
        (("skaha", "url"), "ftp://ws.example.org/skaha/v1"),
        (("skaha", "token"), ""),
        (("skaha", "timeout"), 0),
        (("rucio", "account"), "Not An Account"),
        (("rucio", "rse"), ""),
        (("cavern", "resource_id"), "https://example.org/cavern"),
        (("harbor", "upstream_username"), "reader"),
        (("harbor", "timeout"), 601),
        (("user",), "../etc"),
        (("unknown",), "x"),
    ],
)
def test_settings_refuse(path: tuple[str, ...], value: Any) -> None:
    document = settings_document()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        SiteServicesSettings.model_validate(document)


def test_settings_describe_every_field() -> None:
    schema = json.dumps(SiteServicesSettings.model_json_schema())
    for model in (SiteServicesSettings, SkahaSettings, HarborSettings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    assert "upstream_password" in schema


# -- the adapters on a rig ---------------------------------------------------------------------


async def test_open_builds_the_real_adapters(rig: SiteRig) -> None:
    async with await open_site_services(rig.services_settings) as services:
        assert isinstance(services.staging, DataStaging)
        assert isinstance(services.storage, UserStorage)
        assert isinstance(services.images, ImageRegistry)
        assert isinstance(services.sessions, SessionService)
        assert isinstance(services.preparedata, DataStaging)
        assert (services.site, services.user) == ("Test Site", "svc")
        node = await services.storage.ensure_area("svc", "ws-9") + "/x.fits"
        assert services.session_path(node) == "arc/home/svc/ws-9/x.fits"
        for outside in (node.replace("/svc/", "/other/"), "https://h/home/svc/x"):
            with pytest.raises(ValueError, match="sessions see"):
                services.session_path(outside)
        await services.aclose()  # closing twice is harmless


async def test_the_preparation_chain_end_to_end(rig: SiteRig) -> None:
    for emulator in rig.emulators.values():
        emulator.app.calls.clear()
    image = ImageRef.parse(rig.harbor.url.removeprefix("http://") + "/skaha/astroml:24.07")
    async with await open_site_services(rig.services_settings) as services:
        # Data: the file is only at the remote RSE; a rule brings it to the site's.
        did = DID("demo", "remote-a.fits")
        assert {r.rse for r in await services.staging.replicas(did)} == {rig.remote_rse}
        ref = await services.staging.stage(StageRequest((did,), "ws-chain"))
        staged = await until(
            lambda: services.staging.status(ref), lambda s: s.state is StageState.DONE, 10
        )
        assert (staged.location, staged.bytes_done, staged.bytes_total) == (rig.site_rse,) + (
            3000,
        ) * 2
        (url,) = staged.urls

        # Storage: the area, then the staged replica pulled into it from its URL.
        area = await services.storage.ensure_area(services.user, "ws-chain")
        transfer = await services.storage.place(url, area + "/remote-a.fits")
        placed = await until(
            lambda: services.storage.transfer_status(transfer), lambda t: t.phase.finished, 10
        )
        assert placed.phase is TransferPhase.COMPLETED, placed.message
        (entry,) = await services.storage.listing(area)
        assert (entry.name, entry.size) == ("remote-a.fits", 3000)

        # Image: only upstream at first; replicated in.
        assert not (await services.images.inspect(image)).present
        copy = await services.images.ensure_available(image)
        assert copy is not None
        pulled = await until(lambda: services.images.status(copy), lambda p: p.state.finished, 10)
        assert pulled.state is PullState.SUCCEEDED
        info = await services.images.inspect(image)
        assert info.present and info.reference is not None

        # Session: a headless job from that image prints the placed file.
        path = services.session_path(area + "/remote-a.fits")
        spec = SessionSpec("chain", SessionKind.HEADLESS, info.reference, cmd="cat", args=(path,))
        session_id = await services.sessions.launch(spec)
        ended = await until(
            lambda: services.sessions.get(session_id),
            lambda s: s.status in {SessionStatus.COMPLETED, SessionStatus.FAILED},
            15,
        )
        logs = await services.sessions.logs(session_id)
        assert ended.status is SessionStatus.COMPLETED, logs
        assert logs == demo_text("demo", "remote-a.fits", 3000).decode()
        await services.sessions.delete(session_id)

    # Each external operation was submitted exactly once.
    assert rig.rucio.app.count("POST", r"^/rules/?$") == 1
    assert rig.cavern.app.count("POST", r"/transfers$") == 1
    assert rig.harbor.app.count("POST", r"/replication/executions$") == 1
    assert rig.skaha.app.count("POST", r"/session$") == 1
    assert rig.door.app.count("GET", rf"/rse/{rig.site_rse}/") == 1


async def test_preparedata_stages_a_dataset_into_the_home(rig: SiteRig) -> None:
    async with await open_site_services(rig.services_settings) as services:
        prepare = services.preparedata
        assert prepare is not None
        ref = await prepare.stage(StageRequest((DID("demo", "pair"),), "ws-pd"))
        done = await until(
            lambda: prepare.status(ref),
            lambda s: s.state in {StageState.DONE, StageState.FAILED},
            10,
        )
        assert done.state is StageState.DONE, done.message
        listed = await services.storage.listing(
            await services.storage.ensure_area(services.user, "ws-pd")
        )
    assert sorted((e.name, e.size) for e in listed) == [
        ("remote-a.fits", 3000),
        ("remote-b.fits", 2200),
    ]


async def test_site_faults_surface_as_site_errors(rig: SiteRig) -> None:
    rig.cavern.app.rules = [FaultRule(path="/nodes/", status=503, error_rate=1.0)]
    try:
        async with await open_site_services(rig.services_settings) as services:
            with pytest.raises(TransientSiteError):
                await services.storage.ensure_area(services.user, "ws-fault")
    finally:
        rig.cavern.app.rules = []
