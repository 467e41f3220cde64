"""The Cavern emulator over real HTTP: nodes, paging, traversal, auth, quota, UWS jobs."""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from defusedxml import ElementTree as SafeET

from loopback_support import BlobServer, Loopback
from worksteps.emulators.cavern import CavernConfig, create_app

VOS = "{http://www.ivoa.net/xml/VOSpace/v2.0}"
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
CORE = "ivo://ivoa.net/vospace/core#"
AUTHORITY = "example.org~cavern"
ALICE = {"Authorization": "Bearer tok-alice"}
BOB = {"Authorization": "Bearer tok-bob"}

Cavern = Callable[..., tuple[str, CavernConfig]]


@pytest.fixture
def cavern(tmp_path: Path, loopback: Loopback) -> Cavern:
    """Start emulators on loopback; returns (base URL incl. /cavern, config)."""
    serial = itertools.count()

    def start(**overrides: Any) -> tuple[str, CavernConfig]:
        root = tmp_path / f"root{next(serial)}"
        config = CavernConfig(
            root=root, tokens={"tok-alice": "alice", "tok-bob": "bob"}, **overrides
        )
        return loopback(create_app(config)).url + "/cavern", config

    return start


@pytest.fixture
def source(blob_server: BlobServer) -> tuple[str, bytes]:
    """A plain HTTP server with one 120 kB blob (``/blob``) to pull from, and ``/missing``."""
    return blob_server(120_000)


def uri(path: str) -> str:
    return f"vos://{AUTHORITY}{path}"


def node_xml(path: str, kind: str = "vos:ContainerNode", props: str = "") -> str:
    return (
        f'<vos:node xmlns:vos="http://www.ivoa.net/xml/VOSpace/v2.0" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" uri="{uri(path)}" '
        f'xsi:type="{kind}"><vos:properties>{props}</vos:properties></vos:node>'
    )


def transfer_xml(target: str, direction: str, extra: str = "") -> str:
    return (
        '<vos:transfer xmlns:vos="http://www.ivoa.net/xml/VOSpace/v2.0" version="2.1">'
        f"<vos:target>{target}</vos:target><vos:direction>{direction}</vos:direction>"
        f"{extra}</vos:transfer>"
    )


def children(body: bytes) -> list[Any]:
    root = SafeET.fromstring(body)
    return list(root.find(f"{VOS}nodes") or [])


def props(element: Any) -> dict[str, str]:
    return {p.get("uri"): p.text or "" for p in element.iter(f"{VOS}property")}


def raw(base: str, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    """A request whose path is sent byte for byte (no client-side normalisation)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.putrequest(method, parts.path + path, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def put_bytes(client: httpx.Client, base: str, path: str, data: bytes) -> httpx.Response:
    return client.put(f"{base}/files{path}", content=data, headers=ALICE)


def test_capabilities_name_every_endpoint_of_this_server(cavern: Cavern) -> None:
    base, _ = cavern()
    body = httpx.get(f"{base}/capabilities").text
    for std, path in [
        ("VOSpace/v2.0#nodes", "/nodes"),
        ("VOSpace/v2.0#transfers", "/transfers"),
        ("VOSpace#sync-2.1", "/synctrans"),
        ("VOSpace#files-proto", "/files"),
        ("VOSpace#recursive-delete-proto", "/async-delete"),
        ("VOSI#availability", "/availability"),
    ]:
        assert f"ivo://ivoa.net/std/{std}" in body
        assert f'<accessURL use="base">{base}{path}</accessURL>' in body
    assert "ivo://ivoa.net/sso#token" in body
    assert "<vosi:available>true</vosi:available>" in httpx.get(f"{base}/availability").text


def test_every_child_carries_date_length_and_type(cavern: Cavern) -> None:
    base, _ = cavern()
    with httpx.Client() as client:
        client.put(f"{base}/nodes/home/alice/d", content=node_xml("/home/alice/d"), headers=ALICE)
        put_bytes(client, base, "/home/alice/a.fits", b"x" * 10)
        listing = client.get(f"{base}/nodes/home/alice", headers=ALICE)
    assert listing.status_code == 200
    root = SafeET.fromstring(listing.content)
    assert root.get(XSI_TYPE) == "vos:ContainerNode"
    assert props(root)[CORE + "quota"] == str(10 * 1024**3)
    kids = {c.get("uri"): c for c in children(listing.content)}
    assert set(kids) == {uri("/home/alice/a.fits"), uri("/home/alice/d")}
    for child in kids.values():
        date = props(child)[CORE + "date"]
        assert time.strptime(date[:19], "%Y-%m-%dT%H:%M:%S")
    data = kids[uri("/home/alice/a.fits")]
    assert data.get(XSI_TYPE) == "vos:DataNode"
    assert props(data)[CORE + "length"] == "10"
    assert props(data)[CORE + "MD5"] == "336311a016184326ddbdd61edd4eeb52"


def test_paging_honours_limit_and_inclusive_start_uri(cavern: Cavern) -> None:
    base, config = cavern()
    home = config.root / "home" / "alice"
    home.mkdir(parents=True)
    for i in range(7):
        (home / f"f{i}").write_bytes(b"")
    url = f"{base}/nodes/home/alice"

    def names(**params: str) -> list[str]:
        response = httpx.get(url, params=params, headers=ALICE)
        assert response.status_code == 200, response.text
        return [c.get("uri").rsplit("/", 1)[1] for c in children(response.content)]

    assert names(limit="0") == []
    assert names() == [f"f{i}" for i in range(7)]
    assert names(limit="3") == ["f0", "f1", "f2"]
    assert names(limit="3", uri=uri("/home/alice/f2")) == ["f2", "f3", "f4"]
    assert names(limit="3", uri=uri("/home/alice/f5")) == ["f5", "f6"]
    other = httpx.get(url, params={"uri": uri("/home/bob/f1")}, headers=ALICE)
    assert other.status_code == 400
    assert other.text.startswith("InvalidURI")
    for bad in ("-1", "x"):
        refused = httpx.get(url, params={"limit": bad}, headers=ALICE)
        assert refused.status_code == 400
        assert refused.text.startswith("InvalidArgument")
    assert httpx.get(url, params={"sort": "date"}, headers=ALICE).status_code == 400


def test_max_page_size_caps_unlimited_listings(cavern: Cavern) -> None:
    base, config = cavern(max_page_size=4)
    home = config.root / "home" / "alice"
    home.mkdir(parents=True)
    for i in range(6):
        (home / f"f{i}").write_bytes(b"")
    response = httpx.get(f"{base}/nodes/home/alice", headers=ALICE)
    assert len(children(response.content)) == 4
    response = httpx.get(f"{base}/nodes/home/alice", params={"limit": "6"}, headers=ALICE)
    assert len(children(response.content)) == 6


@pytest.mark.parametrize(
    "path",
    [
        "/nodes/home/alice/../bob",
        "/nodes/home/alice/%2e%2e/bob",
        "/nodes/home/alice/%2E%2E%2Fbob",
        "/nodes/home/alice%2F..%2F..%2F..%2Fetc",
        "/nodes/home/alice/./x",
        "/nodes/home/alice/x%00y",
        "/nodes/home/alice/..%5c..%5cetc",
        "/files/home/alice/../../../../etc/passwd",
        "/files/home/alice/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_path_traversal_is_refused(cavern: Cavern, path: str) -> None:
    base, config = cavern()
    response = raw(base, "GET", path, ALICE)
    assert response.status == 400
    assert response.body.decode().startswith("InvalidURI")
    escaped = raw(base, "PUT", path.replace("/files/", "/nodes/"), ALICE)
    assert escaped.status == 400
    assert not (config.root.parent / "bob").exists()


def test_symlinks_out_of_the_root_are_not_nodes(cavern: Cavern, tmp_path: Path) -> None:
    base, config = cavern()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    home = config.root / "home" / "alice"
    home.mkdir(parents=True)
    (home / "escape").symlink_to(outside)
    assert httpx.get(f"{base}/nodes/home/alice/escape", headers=ALICE).status_code == 404
    assert httpx.get(f"{base}/files/home/alice/escape/secret", headers=ALICE).status_code == 404
    listing = httpx.get(f"{base}/nodes/home/alice", headers=ALICE)
    assert children(listing.content) == []


def test_traversal_inside_documents_is_refused(cavern: Cavern) -> None:
    base, _ = cavern()
    sneaky = f"vos://{AUTHORITY}/home/alice/../bob/x"
    put = httpx.put(
        f"{base}/nodes/home/alice/x", content=node_xml("/home/alice/../bob/x"), headers=ALICE
    )
    assert put.status_code == 400
    assert put.text.startswith("InvalidURI")
    sync = httpx.post(
        f"{base}/synctrans",
        content=transfer_xml(sneaky, "pushToVoSpace"),
        headers=ALICE,
        follow_redirects=True,
    )
    assert sync.status_code == 400
    assert sync.text.startswith("InvalidURI")


def test_identity_and_permissions(cavern: Cavern) -> None:
    base, _ = cavern()
    with httpx.Client() as client:
        assert put_bytes(client, base, "/home/alice/f", b"abc").status_code == 201
        wrong = client.get(f"{base}/nodes/home/alice", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert client.get(f"{base}/nodes/home/alice/f").status_code == 403
        assert client.get(f"{base}/files/home/alice/f", headers=BOB).status_code == 403
        denied = client.put(f"{base}/files/home/alice/g", content=b"x", headers=BOB)
        assert denied.status_code == 403
        assert denied.text.startswith("PermissionDenied")
        assert client.delete(f"{base}/nodes/home/alice", headers=ALICE).status_code == 403
        home = client.get(f"{base}/nodes/home", headers=BOB)
        assert {c.get("uri") for c in children(home.content)} >= {uri("/home/alice")}
        public = node_xml(
            "/home/alice/f",
            "vos:DataNode",
            f'<vos:property uri="{CORE}ispublic">true</vos:property>',
        )
        assert (
            client.post(f"{base}/nodes/home/alice/f", content=public, headers=ALICE).status_code
            == 200
        )
        assert client.get(f"{base}/files/home/alice/f").content == b"abc"


def test_node_lifecycle_faults(cavern: Cavern) -> None:
    base, _ = cavern()
    with httpx.Client() as client:
        made = client.put(
            f"{base}/nodes/home/alice/d", content=node_xml("/home/alice/d"), headers=ALICE
        )
        assert made.status_code == 201
        assert SafeET.fromstring(made.content).get("uri") == uri("/home/alice/d")
        again = client.put(
            f"{base}/nodes/home/alice/d", content=node_xml("/home/alice/d"), headers=ALICE
        )
        assert (again.status_code, again.text.split(":")[0]) == (409, "DuplicateNode")
        orphan = client.put(
            f"{base}/nodes/home/alice/no/x", content=node_xml("/home/alice/no/x"), headers=ALICE
        )
        assert (orphan.status_code, orphan.text.split(":")[0]) == (404, "ContainerNotFound")
        put_bytes(client, base, "/home/alice/d/f", b"1")
        full = client.delete(f"{base}/nodes/home/alice/d", headers=ALICE)
        assert full.status_code == 400
        assert "not empty" in full.text
        assert client.delete(f"{base}/nodes/home/alice/d/f", headers=ALICE).status_code == 200
        assert client.delete(f"{base}/nodes/home/alice/d", headers=ALICE).status_code == 200
        gone = client.delete(f"{base}/nodes/home/alice/d", headers=ALICE)
        assert (gone.status_code, gone.text.split(":")[0]) == (404, "NodeNotFound")


def test_properties_set_delete_and_read_only(cavern: Cavern) -> None:
    base, _ = cavern()
    with httpx.Client() as client:
        put_bytes(client, base, "/home/alice/f", b"1234")
        update = node_xml(
            "/home/alice/f",
            "vos:DataNode",
            f'<vos:property uri="{CORE}description">hello</vos:property>'
            f'<vos:property uri="{CORE}length">99</vos:property>'
            '<vos:property uri="ivo://example.org/mine#tag">t1</vos:property>',
        )
        assert (
            client.post(f"{base}/nodes/home/alice/f", content=update, headers=ALICE).status_code
            == 200
        )
        now = props(
            SafeET.fromstring(client.get(f"{base}/nodes/home/alice/f", headers=ALICE).content)
        )
        assert now[CORE + "description"] == "hello"
        assert now["ivo://example.org/mine#tag"] == "t1"
        assert now[CORE + "length"] == "4"
        remove = node_xml(
            "/home/alice/f",
            "vos:DataNode",
            f'<vos:property uri="{CORE}description" xsi:nil="true"/>',
        )
        client.post(f"{base}/nodes/home/alice/f", content=remove, headers=ALICE)
        later = props(
            SafeET.fromstring(client.get(f"{base}/nodes/home/alice/f", headers=ALICE).content)
        )
        assert CORE + "description" not in later
        assert later["ivo://example.org/mine#tag"] == "t1"


def test_quota_is_enforced_while_bytes_stream(cavern: Cavern) -> None:
    base, config = cavern(quota_bytes=1000)
    with httpx.Client() as client:
        assert put_bytes(client, base, "/home/alice/a", b"x" * 800).status_code == 201
        over = put_bytes(client, base, "/home/alice/b", b"x" * 300)
        assert over.status_code == 413
        assert over.text.startswith("RequestEntityTooLarge")
        assert put_bytes(client, base, "/home/alice/a", b"y" * 1000).status_code == 201

        def chunked() -> Iterator[bytes]:
            yield b"z" * 600
            yield b"z" * 600

        streamed = client.put(f"{base}/files/home/alice/c", content=chunked(), headers=ALICE)
        assert streamed.status_code == 413
        home = props(
            SafeET.fromstring(client.get(f"{base}/nodes/home/alice", headers=ALICE).content)
        )
    assert home[CORE + "length"] == "1000"
    assert not (config.root / "home" / "alice" / "c").exists()
    assert list((config.root / ".cavern" / "uploads").iterdir()) == []


def job_phase(client: httpx.Client, job: str) -> str:
    return client.get(f"{job}/phase", headers=ALICE).text


def start_job(client: httpx.Client, base: str, document: str, run: bool = True) -> str:
    created = client.post(f"{base}/transfers", content=document, headers=ALICE)
    assert created.status_code == 303, created.text
    job = created.headers["location"]
    if run:
        started = client.post(f"{job}/phase", data={"PHASE": "RUN"}, headers=ALICE)
        assert started.status_code == 303
    return job


def pull_xml(target_path: str, url: str) -> str:
    protocol = (
        f'<vos:protocol uri="{CORE}httpget"><vos:endpoint>{url}</vos:endpoint></vos:protocol>'
    )
    return transfer_xml(uri(target_path), "pullToVoSpace", protocol)


def test_async_pull_walks_through_uws_phases_with_progress(
    cavern: Cavern, source: tuple[str, bytes]
) -> None:
    base, config = cavern(bandwidth=300_000, concurrent_transfers=1)
    src, payload = source
    with httpx.Client(timeout=10) as client:
        first = start_job(client, base, pull_xml("/home/alice/one", f"{src}/blob"), run=False)
        assert job_phase(client, first) == "PENDING"
        client.post(f"{first}/phase", data={"PHASE": "RUN"}, headers=ALICE)
        second = start_job(client, base, pull_xml("/home/alice/two", f"{src}/blob"))
        seen: set[str] = set()
        progress: list[int] = []
        deadline = time.monotonic() + 10
        while job_phase(client, second) != "COMPLETED" and time.monotonic() < deadline:
            doc = SafeET.fromstring(client.get(f"{first}?WAIT=1", headers=ALICE).content)
            seen.add(job_phase(client, second))
            mark = doc.find(f"{UWS}jobInfo/{{urn:worksteps:cavern-emulator}}progress")
            progress.append(int(mark.get("bytes")))
            assert mark.get("total") in (None, str(len(payload)))
        assert job_phase(client, first) == "COMPLETED"
        assert job_phase(client, second) == "COMPLETED"
    assert "QUEUED" in seen  # one slot: the second job waited for the first
    assert any(0 < p < len(payload) for p in progress)
    assert progress == sorted(progress)
    assert (config.root / "home/alice/one").read_bytes() == payload
    assert (config.root / "home/alice/two").read_bytes() == payload


def test_failed_and_aborted_jobs(cavern: Cavern, source: tuple[str, bytes]) -> None:
    base, _ = cavern(bandwidth=50_000, quota_bytes=100_000)
    src, _payload = source
    with httpx.Client(timeout=10) as client:
        missing = start_job(client, base, pull_xml("/home/alice/m", f"{src}/missing"))
        too_big = start_job(client, base, pull_xml("/home/alice/big", f"{src}/blob"))
        foreign = start_job(client, base, pull_xml("/home/alice/f", "http://example.com/x"))
        for job, fault in [
            (missing, "TransferFailed"),
            (too_big, "RequestEntityTooLarge"),
            (foreign, "PermissionDenied"),
        ]:
            doc = SafeET.fromstring(client.get(f"{job}?WAIT=5", headers=ALICE).content)
            assert doc.findtext(f"{UWS}phase") == "ERROR"
            assert doc.findtext(f"{UWS}errorSummary/{UWS}message").startswith(fault)
            assert client.get(f"{job}/error", headers=ALICE).text.startswith(fault)
        assert client.get(missing, headers=BOB).status_code == 403
        slow = start_job(client, base, pull_xml("/home/alice/slow", f"{src}/blob"))
        aborted = client.post(f"{slow}/phase", data={"PHASE": "ABORT"}, headers=ALICE)
        assert aborted.status_code == 303
        assert job_phase(client, slow) == "ABORTED"


def test_pull_to_vospace_can_behave_like_real_cavern(
    cavern: Cavern, source: tuple[str, bytes]
) -> None:
    base, _ = cavern(emulate_pull_to_vospace=False)
    with httpx.Client(timeout=10) as client:
        job = start_job(client, base, pull_xml("/home/alice/x", f"{source[0]}/blob"))
        client.get(f"{job}?WAIT=5", headers=ALICE)
        assert client.get(f"{job}/error", headers=ALICE).text.startswith("UnsupportedOperation")


def test_sync_push_negotiates_a_preauthorised_endpoint(cavern: Cavern) -> None:
    base, config = cavern()
    protocol = f'<vos:protocol uri="{CORE}httpsput"/>'
    with httpx.Client(timeout=10) as client:
        negotiated = client.post(
            f"{base}/synctrans",
            content=transfer_xml(uri("/home/alice/up"), "pushToVoSpace", protocol),
            headers=ALICE,
        )
        assert negotiated.status_code == 303
        xfer = negotiated.headers["location"]
        assert "/xfer/" in xfer
        document = SafeET.fromstring(client.get(xfer, headers=ALICE).content)
        endpoint = document.findtext(f"{VOS}protocol/{VOS}endpoint")
        assert endpoint and "/preauth:" in endpoint
        job = xfer.replace("/xfer/", "/transfers/")
        assert job_phase(client, job) == "EXECUTING"
        tampered = endpoint.replace("/preauth:", "/preauth:x")
        assert client.put(tampered, content=b"evil").status_code == 403
        assert client.put(endpoint.replace("/up", "/other"), content=b"x").status_code == 403
        stored = client.put(endpoint, content=b"payload")
        assert stored.status_code == 201
        md5 = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
        assert stored.headers["digest"] == f"md5={md5}"
        assert job_phase(client, job) == "COMPLETED"
    assert (config.root / "home/alice/up").read_bytes() == b"payload"


def test_sync_negotiation_failure_is_an_error_job(cavern: Cavern) -> None:
    base, _ = cavern()
    with httpx.Client(timeout=10) as client:
        negotiated = client.post(
            f"{base}/synctrans",
            content=transfer_xml(uri("/home/alice/none"), "pullFromVoSpace"),
            headers=ALICE,
        )
        xfer = negotiated.headers["location"]
        answer = client.get(xfer, headers=ALICE)
        assert (answer.status_code, answer.text.split(":")[0]) == (404, "NodeNotFound")
        assert job_phase(client, xfer.replace("/xfer/", "/transfers/")) == "ERROR"


def test_encoded_names_round_trip(cavern: Cavern) -> None:
    base, _ = cavern()
    with httpx.Client() as client:
        name = "a b%c.txt"
        path = "/home/alice/" + quote(name)
        assert client.put(f"{base}/files{path}", content=b"1", headers=ALICE).status_code == 201
        listing = client.get(f"{base}/nodes/home/alice", headers=ALICE)
        [child] = children(listing.content)
        assert child.get("uri") == uri(path)
