"""Contract: the real ``vos`` client and the Cavern adapter against the Cavern emulator.

Every ``vos`` call the adapter relies on (mkdir, get_node, listings across pages, copy up and
down, node properties, delete, recursive delete, async move) is exercised over real HTTP, then
the adapter itself, including fault injection and an unreachable service.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import vos
from cadcutils import exceptions as cadc_errors

from loopback_support import BlobServer, Loopback
from worksteps.core.serving import ServedApp
from worksteps.emulators.cavern import CavernConfig, create_app
from worksteps.emulators.faults import FaultRule
from worksteps.site.cavern import REGISTRY, CavernStorage
from worksteps.site.errors import PermanentSiteError, SiteNotFound, TransientSiteError
from worksteps.site.storage import TransferPhase, UserStorage

_serial = itertools.count()


class Site:
    """One running emulator with its own resource ID (so no client cache is shared)."""

    def __init__(self, served: ServedApp, config: CavernConfig, registry: Path) -> None:
        self.served = served
        self.config = config
        self.registry = registry
        self.url = served.url + "/cavern"
        self.home = f"vos://{config.vos_authority}/home/alice"

    def client(self, token: str = "tok-alice") -> Any:
        REGISTRY.register(self.config.resource_id, self.url + "/capabilities", self.registry)
        return vos.Client(vospace_token=token)

    def storage(self, token: str = "tok-alice", timeout: float = 10.0) -> CavernStorage:
        return CavernStorage(
            self.config.resource_id,
            self.url + "/capabilities",
            token,
            registry_dir=self.registry,
            timeout=timeout,
        )

    def faults(self, rules: list[FaultRule]) -> None:
        body = [rule.model_dump() for rule in rules]
        httpx.put(self.served.url + "/_emulator/faults", json=body).raise_for_status()


Sites = Callable[..., Site]


@pytest.fixture
def site(tmp_path: Path, loopback: Loopback) -> Sites:
    def start(**overrides: Any) -> Site:
        n = next(_serial)
        overrides.setdefault("resource_id", f"ivo://site{n}.contract.test/cavern")
        config = CavernConfig(
            root=tmp_path / f"root{n}",
            tokens={"tok-alice": "alice", "tok-bob": "bob"},
            **overrides,
        )
        return Site(loopback(create_app(config)), config, tmp_path / "registry")

    return start


@pytest.fixture
def source(blob_server: BlobServer) -> tuple[str, bytes]:
    """The URL of a 150 kB blob on a plain HTTP server, and its bytes."""
    url, payload = blob_server(150_000)
    return url + "/blob", payload


# -- the vos client ---------------------------------------------------------------------------


def test_vos_mkdir_get_node_and_duplicate(site: Sites) -> None:
    s = site()
    client = s.client()
    client.mkdir(s.home + "/work")
    assert client.isdir(s.home + "/work")
    with pytest.raises(cadc_errors.AlreadyExistsException):
        client.mkdir(s.home + "/work")
    node = client.get_node(s.home + "/work", limit=0, force=True)
    assert node.type == "vos:ContainerNode"
    assert node.props["creator"] == "alice"
    assert not client.isdir(s.home + "/absent")


def test_vos_listings_page_without_loss_or_duplicates(site: Sites) -> None:
    s = site(max_page_size=510)
    folder = s.config.root / "home" / "alice" / "many"
    folder.mkdir(parents=True)
    names = [f"n{i:04d}" for i in range(650)]
    for name in names:
        (folder / name).write_bytes(b"")
    client = s.client()
    uri = s.home + "/many"
    whole = client.get_node(uri, limit=None, force=True)  # > 500 children: the client pages
    assert [n.name for n in whole.node_list] == names
    head = client.get_node(uri, limit=0, force=True)
    assert head.node_list == []
    paged = [n.name for n in head.get_children(client, None, None, 60)]
    assert paged == names
    assert [n.name for n in client.get_info_list(uri)] == names
    assert [e.name for e in asyncio.run(s.storage().listing(uri))] == names


def test_vos_copy_up_and_down(site: Sites, tmp_path: Path) -> None:
    s = site()
    client = s.client()
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(300_000))
    assert client.copy(str(local), s.home + "/up.bin") == 300_000
    node = client.get_node(s.home + "/up.bin", force=True)
    assert node.props["MD5"] == hashlib.md5(local.read_bytes()).hexdigest()
    assert int(node.props["length"]) == 300_000
    assert client.copy(s.home + "/up.bin", str(tmp_path / "down.bin")) == 300_000
    assert (tmp_path / "down.bin").read_bytes() == local.read_bytes()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    client.copy(str(empty), s.home + "/empty")
    assert client.isfile(s.home + "/empty")
    assert client.copy(s.home + "/empty", str(tmp_path / "empty.down")) == 0


def test_vos_node_properties(site: Sites) -> None:
    s = site()
    client = s.client()
    client.mkdir(s.home + "/p")
    node = client.get_node(s.home + "/p", force=True)
    node.props["description"] = "calibrated"
    client.add_props(node)
    assert client.get_node(s.home + "/p", force=True).props["description"] == "calibrated"
    node = client.get_node(s.home + "/p", force=True)
    node.props["description"] = None
    client.add_props(node)
    assert "description" not in client.get_node(s.home + "/p", force=True).props


def test_vos_delete_move_and_recursive_delete(site: Sites, tmp_path: Path) -> None:
    s = site()
    client = s.client()
    local = tmp_path / "f"
    local.write_bytes(b"data")
    client.mkdir(s.home + "/tree")
    client.mkdir(s.home + "/tree/sub")
    client.copy(str(local), s.home + "/tree/sub/f")
    with pytest.raises(cadc_errors.BadRequestException):
        client.delete(s.home + "/tree/sub")  # not empty
    client.move(s.home + "/tree/sub/f", s.home + "/tree/g")
    assert client.listdir(s.home + "/tree", force=True) == ["g", "sub"]
    client.delete(s.home + "/tree/sub")
    assert client.recursive_delete(s.home + "/tree") == ("2", "0")
    assert client.listdir(s.home, force=True) == []


# -- the adapter ------------------------------------------------------------------------------


async def wait_finished(storage: CavernStorage, ref: str) -> list[Any]:
    seen = []
    for _ in range(200):
        status = await storage.transfer_status(ref)
        seen.append(status)
        if status.phase.finished:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"transfer {ref} did not finish: {seen[-1]}")


async def test_adapter_is_a_user_storage_and_ensures_areas(site: Sites) -> None:
    s = site()
    storage = s.storage()
    assert isinstance(storage, UserStorage)
    area = await storage.ensure_area("alice", "worksteps/ws-1/data")
    assert area == s.home + "/worksteps/ws-1/data"
    assert await storage.ensure_area("alice", "worksteps/ws-1/data") == area
    assert (s.config.root / "home/alice/worksteps/ws-1/data").is_dir()
    (s.config.root / "home/alice/file").write_bytes(b"x")
    with pytest.raises(PermanentSiteError, match="not a container"):
        await storage.ensure_area("alice", "file/below")
    for bad in ("../bob", "a//b", "./x"):
        with pytest.raises(PermanentSiteError, match="invalid path"):
            await storage.ensure_area("alice", bad)


async def test_adapter_without_home_is_not_found(site: Sites) -> None:
    s = site(create_homes=False)
    with pytest.raises(SiteNotFound):
        await s.storage().ensure_area("alice", "x")


async def test_adapter_places_from_url_with_progress(
    site: Sites, source: tuple[str, bytes]
) -> None:
    s = site(bandwidth=500_000)
    url, payload = source
    storage = s.storage()
    area = await storage.ensure_area("alice", "run")
    ref = await storage.place(url, area + "/staged.bin")
    seen = await wait_finished(storage, ref)
    assert seen[-1].phase is TransferPhase.COMPLETED
    assert seen[-1].percent == 100.0
    running = [st.percent for st in seen if st.phase is TransferPhase.EXECUTING and st.percent]
    assert any(0 < p < 100 for p in running)  # progress was visible while it ran
    assert running == sorted(running)
    assert seen[-1].total_bytes == len(payload)
    copy_ref = await storage.place(area + "/staged.bin", area + "/copy.bin")
    assert (await wait_finished(storage, copy_ref))[-1].phase is TransferPhase.COMPLETED
    entries = {e.name: e for e in await storage.listing(area)}
    assert set(entries) == {"staged.bin", "copy.bin"}
    digest = hashlib.md5(payload).hexdigest()
    for entry in entries.values():
        assert (entry.size, entry.md5, entry.is_container) == (len(payload), digest, False)
        assert entry.modified is not None
    [single] = await storage.listing(area + "/copy.bin")
    assert single.uri == area + "/copy.bin"


async def test_adapter_reports_failed_and_cancelled_transfers(
    site: Sites, source: tuple[str, bytes]
) -> None:
    s = site(bandwidth=100_000, quota_bytes=100_000)
    url, _payload = source
    storage = s.storage()
    area = await storage.ensure_area("alice", "run")
    ref = await storage.place(url, area + "/too-big")
    final = (await wait_finished(storage, ref))[-1]
    assert final.phase is TransferPhase.ERROR
    assert final.message and final.message.startswith("RequestEntityTooLarge")
    (s.config.root / "home/alice/run/small").write_bytes(b"s" * 40_000)
    slow = await storage.place(area + "/small", area + "/small-copy")
    await storage.cancel_transfer(slow)
    assert (await storage.transfer_status(slow)).phase is TransferPhase.ABORTED
    with pytest.raises(PermanentSiteError):
        await storage.place("ftp://elsewhere/x", area + "/x")
    with pytest.raises(PermanentSiteError):
        await storage.place(url, "vos://other.org~cavern/home/alice/x")


async def test_adapter_against_real_cavern_behaviour(
    site: Sites, source: tuple[str, bytes]
) -> None:
    s = site(emulate_pull_to_vospace=False)
    storage = s.storage()
    area = await storage.ensure_area("alice", "run")
    final = (await wait_finished(storage, await storage.place(source[0], area + "/x")))[-1]
    assert final.phase is TransferPhase.ERROR
    assert final.message and "UnsupportedOperation" in final.message


async def test_adapter_listing_and_delete(site: Sites) -> None:
    s = site()
    storage = s.storage()
    area = await storage.ensure_area("alice", "tree/a/b")
    for i in range(9):
        (s.config.root / f"home/alice/tree/f{i}").write_bytes(b"1")
    entries = await storage.listing(s.home + "/tree")
    assert [e.name for e in entries] == ["a"] + [f"f{i}" for i in range(9)]
    assert entries[0].is_container
    await storage.delete(s.home + "/tree")
    with pytest.raises(SiteNotFound):
        await storage.listing(area)
    with pytest.raises(SiteNotFound):
        await storage.delete(s.home + "/tree")
    with pytest.raises(PermanentSiteError, match="refusing"):
        await storage.delete(s.home)


async def test_adapter_permission_and_identity_errors(site: Sites) -> None:
    s = site()
    await s.storage().ensure_area("alice", "private")
    with pytest.raises(PermanentSiteError) as denied:
        await s.storage("tok-bob").ensure_area("alice", "private/x")
    assert denied.value.status == 403
    with pytest.raises(PermanentSiteError) as unknown:
        await s.storage("tok-nobody").listing(s.home)
    assert unknown.value.status == 401


async def test_injected_faults_are_transient_and_fast(site: Sites) -> None:
    s = site()
    storage = s.storage(timeout=1.0)
    area = await storage.ensure_area("alice", "run")
    s.faults([FaultRule(path="/cavern/nodes", status=503, error_rate=1.0)])
    with pytest.raises(TransientSiteError) as unavailable:
        await asyncio.wait_for(storage.listing(area), 5)
    assert unavailable.value.status == 503
    s.faults([FaultRule(method="POST", path="/cavern/transfers$", status=500, error_rate=1.0)])
    with pytest.raises(TransientSiteError):
        await storage.place(area + "/a", area + "/b")
    s.faults([FaultRule(path="/cavern/nodes", latency=3.0)])
    with pytest.raises(TransientSiteError):
        await asyncio.wait_for(storage.ensure_area("alice", "run/slow"), 5)
    s.faults([])
    assert await storage.listing(area) == []


async def test_unreachable_service_is_transient(site: Sites) -> None:
    s = site()
    storage = s.storage(timeout=1.0)
    s.served.stop()
    with pytest.raises(TransientSiteError):
        await storage.ensure_area("alice", "x")


# -- concurrent discovery ---------------------------------------------------------------------


def test_concurrent_first_calls_of_fresh_adapters_all_succeed(site: Sites) -> None:
    """cadcutils' discovery cache is not thread-safe (a check-then-makedirs of the cache
    folder, capabilities written in place): fresh adapters, each called from several threads
    released at once, and fresh adapters of one authority, must all succeed."""
    sites = [site() for _ in range(12)]
    twin = site(resource_id=sites[0].config.resource_id.replace("/cavern", "/cavern2"))
    adapters = [s.storage() for s in [*sites, twin]]
    threads = 6
    for adapter in adapters:
        start = threading.Barrier(threads)

        def call(n: int, adapter: CavernStorage = adapter, start: threading.Barrier = start) -> str:
            start.wait()
            return asyncio.run(adapter.ensure_area("alice", f"burst/{n}"))

        with ThreadPoolExecutor(threads) as pool:
            outcomes = [pool.submit(call, n) for n in range(threads)]
            failures = [f.exception() for f in outcomes if f.exception() is not None]
        assert failures == [], failures[:3]
    for s in [*sites, twin]:
        assert len(list((s.config.root / "home/alice/burst").iterdir())) == threads
