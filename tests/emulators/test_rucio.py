"""The Rucio emulator over real HTTP: wire format, rules advancing with time, replicas on disk.

Time is a settable clock shared with the emulator, so every intermediate state is checked
exactly; one test runs on the real clock. The real rucio-clients ``Client`` is used where the
point is that the client accepts what the emulator says.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from rucio.client import Client
from rucio.client.baseclient import BaseClient
from rucio.common import exception as rucio_errors

from loopback_support import Clock, Switchboard
from worksteps.emulators.rucio import (
    DatasetConfig,
    FileConfig,
    LinkConfig,
    RSEConfig,
    RucioCatalogue,
    RucioConfig,
    TransferFailure,
    create_app,
    deterministic_path,
)
from worksteps.emulators.rucio.content import FileContent, write_content
from worksteps.emulators.rucio.expressions import InvalidRSEExpression, resolve

MB = 1_000_000
A, B, C = "SRC-A-T1", "SRC-B-T1", "SRC-C-T2"


def make_config(root: Path, **changes: Any) -> RucioConfig:
    """Three RSEs; dataset user:ds = f1 (1 MB), f2 (2 MB) at A and f3 (3 MB) at A and C.

    Links into B: A→B 1 MB/s, C→B 3 MB/s. So a rule for ds at B finishes f1 after 1 s, f2
    after 3 s and f3 (from C, the faster source) after 4 s.
    """
    values: dict[str, Any] = {
        "rses": [
            RSEConfig(name=A, site="alpha", root=root / "a"),
            RSEConfig(name=B, site="beta", root=root / "b", attributes={"tier": 1}),
            RSEConfig(name=C, site="gamma", root=root / "c", attributes={"tier": 2}),
        ],
        "files": [
            FileConfig(scope="user", name="f1", bytes=1 * MB, rses=[A]),
            FileConfig(scope="user", name="f2", bytes=2 * MB, rses=[A]),
            FileConfig(scope="user", name="f3", bytes=3 * MB, rses=[A, C]),
            FileConfig(scope="user", name="lonely", bytes=10, rses=[]),
            FileConfig(scope="user", name="dir/nested.fits", bytes=100, rses=[A]),
        ],
        "datasets": [DatasetConfig(scope="user", name="ds", files=["f1", "f2", "user:f3"])],
        "links": [
            LinkConfig(source=A, destination=B, bytes_per_second=1 * MB),
            LinkConfig(source=C, destination=B, bytes_per_second=3 * MB),
        ],
        "default_bandwidth": 10 * MB,
    }
    values.update(changes)
    return RucioConfig(**values)


@dataclass
class Served:
    url: str
    catalogue: RucioCatalogue
    clock: Clock
    http: httpx.Client

    def login(self, username: str = "ddmlab", password: str = "secret") -> httpx.Response:
        headers = {"X-Rucio-Username": username, "X-Rucio-Password": password}
        return self.http.get("/auth/userpass", headers=headers)

    def authed(self) -> httpx.Client:
        """The same connection pool, now sending a fresh token with every request."""
        self.http.headers["X-Rucio-Auth-Token"] = self.login().headers["X-Rucio-Auth-Token"]
        return self.http


@pytest.fixture
def serve(switchboard: Switchboard, tmp_path: Path) -> Iterator[Any]:
    switch = switchboard("rucio")
    with httpx.Client(base_url=switch.url) as http:

        def start(config: RucioConfig | None = None, clock: Clock | None = None) -> Served:
            config = config or make_config(tmp_path)
            clock = clock or Clock()
            catalogue = RucioCatalogue(config, clock)
            switch.app = create_app(config, catalogue)
            return Served(switch.url, catalogue, clock, http)

        yield start


@pytest.fixture
def rucio_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Build real clients whose token cache lives under this test's directory."""
    monkeypatch.setattr(BaseClient, "TOKEN_PATH_PREFIX", str(tmp_path / "tokens" / ".rucio_"))

    def build(url: str) -> Client:
        return Client(
            rucio_host=url,
            auth_host=url,
            account="root",
            auth_type="userpass",
            creds={"username": "ddmlab", "password": "secret"},
        )

    return build


def new_rule(http: httpx.Client, did: str = "user:ds", rse: str = B, **extra: Any) -> str:
    scope, name = did.split(":")
    body = {"dids": [{"scope": scope, "name": name}], "copies": 1, "rse_expression": rse, **extra}
    response = http.post("/rules/", json=body)
    assert response.status_code == 201, response.text
    ids = response.json()
    assert isinstance(ids, list)
    return str(ids[0])


def stream_lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == "application/x-json-stream"
    return [json.loads(line) for line in response.text.splitlines() if line]


# -- authentication ----------------------------------------------------------------------


def test_userpass_issues_a_token_that_expires(serve: Any) -> None:
    site = serve()
    response = site.login()
    assert response.status_code == 200
    assert response.headers["X-Rucio-Auth-Account"] == "root"
    assert response.headers["X-Rucio-Auth-Token-Expires"].endswith(" UTC")
    http = site.authed()
    assert http.get("/auth/validate").json()["account"] == "root"
    site.clock.advance(3601)
    refused = http.get("/rses/")
    assert refused.status_code == 401
    assert refused.headers["ExceptionClass"] == "CannotAuthenticate"


def test_bad_credentials_and_missing_token_are_refused(serve: Any) -> None:
    site = serve()
    wrong = site.login(password="nope")
    assert wrong.status_code == 401
    assert wrong.json()["ExceptionClass"] == "CannotAuthenticate"
    assert site.http.get("/rules/" + "0" * 32).status_code == 401
    assert site.http.get("/ping").json() == {"version": "41.5.1"}


# -- rules advance with time ---------------------------------------------------------------


def counters(rule: dict[str, Any]) -> tuple[str, int, int, int]:
    return (
        rule["state"],
        rule["locks_ok_cnt"],
        rule["locks_replicating_cnt"],
        rule["locks_stuck_cnt"],
    )


def test_rule_replicates_file_by_file_at_the_configured_bandwidth(serve: Any) -> None:
    site = serve()
    http = site.authed()
    rule_id = new_rule(http)
    get = http.get(f"/rules/{rule_id}")
    assert get.headers["content-type"] == "application/json"
    assert counters(get.json()) == ("REPLICATING", 0, 3, 0)
    assert get.json()["did_type"] == "DATASET"
    target = site.catalogue.replica_path(B, "user", "f1")
    assert not target.exists()

    site.clock.advance(1.0)  # f1: 1 MB over A→B at 1 MB/s
    assert counters(http.get(f"/rules/{rule_id}").json()) == ("REPLICATING", 1, 2, 0)
    assert target.stat().st_size == 1 * MB
    locks = stream_lines(http.get(f"/rules/{rule_id}/locks"))
    assert {(lock["name"], lock["state"]) for lock in locks} == {
        ("f1", "OK"),
        ("f2", "REPLICATING"),
        ("f3", "REPLICATING"),
    }
    assert {lock["rse"] for lock in locks} == {B}

    site.clock.advance(2.0)  # f2: 2 MB at 1 MB/s
    assert counters(http.get(f"/rules/{rule_id}").json()) == ("REPLICATING", 2, 1, 0)
    site.clock.advance(0.999)  # f3 comes from C at 3 MB/s: not yet
    assert counters(http.get(f"/rules/{rule_id}").json()) == ("REPLICATING", 2, 1, 0)
    site.clock.advance(0.001)
    done = http.get(f"/rules/{rule_id}").json()
    assert counters(done) == ("OK", 3, 0, 0)
    assert done["updated_at"] != done["created_at"]


def test_completed_replica_is_listed_and_its_bytes_match_the_catalogue(serve: Any) -> None:
    site = serve()
    http = site.authed()
    new_rule(http, "user:f1")
    body = {"dids": [{"scope": "user", "name": "f1"}], "all_states": True}
    copying = stream_lines(http.post("/replicas/list", json=body))
    assert copying[0]["states"] == {A: "AVAILABLE", B: "COPYING"}
    only_available = stream_lines(http.post("/replicas/list", json={**body, "all_states": False}))
    assert only_available[0]["states"] == {A: "AVAILABLE"}

    site.clock.advance(1.0)
    [line] = stream_lines(http.post("/replicas/list", json={**body, "rse_expression": B}))
    assert line["states"] == {B: "AVAILABLE"}
    [pfn] = line["rses"][B]
    assert pfn == site.catalogue.pfn(B, "user", "f1")
    path = Path(pfn.removeprefix("file://"))
    assert path == site.catalogue.replica_path(B, "user", "f1")
    data = path.read_bytes()
    assert len(data) == line["bytes"] == 1 * MB
    assert f"{zlib.adler32(data):08x}" == line["adler32"]
    assert data.startswith(b"user:f1\n")


def test_failed_transfer_leaves_the_rule_stuck(serve: Any, tmp_path: Path) -> None:
    failure = TransferFailure(did="user:f2", destination=B, message="checksum mismatch")
    site = serve(make_config(tmp_path, failures=[failure]))
    http = site.authed()
    rule_id = new_rule(http)
    site.clock.advance(2.9)
    assert counters(http.get(f"/rules/{rule_id}").json()) == ("REPLICATING", 1, 2, 0)
    site.clock.advance(0.1)
    stuck = http.get(f"/rules/{rule_id}").json()
    assert counters(stuck) == ("STUCK", 1, 1, 1)
    assert stuck["error"] == "checksum mismatch"
    assert stuck["stuck_at"] is not None
    site.clock.advance(10)
    assert counters(http.get(f"/rules/{rule_id}").json()) == ("STUCK", 2, 0, 1)
    assert not site.catalogue.replica_path(B, "user", "f2").exists()


def test_a_file_without_any_replica_gets_stuck(serve: Any) -> None:
    site = serve()
    http = site.authed()
    rule_id = new_rule(http, "user:lonely")
    stuck = http.get(f"/rules/{rule_id}").json()
    assert counters(stuck) == ("STUCK", 0, 0, 1)
    assert "No source replica" in stuck["error"]


def test_data_already_at_the_destination_is_ok_at_once(serve: Any) -> None:
    site = serve()
    http = site.authed()
    rule_id = new_rule(http, "user:f3", C)
    assert counters(http.get(f"/rules/{rule_id}").json()) == ("OK", 1, 0, 0)


def test_a_second_rule_shares_the_transfer_in_flight(serve: Any) -> None:
    site = serve()
    http = site.authed()
    first = new_rule(http, "user:f2")
    site.clock.advance(1.0)
    second = new_rule(http, "user:ds", B)  # f2 is already on its way, f1 and f3 are queued
    site.clock.advance(1.0)  # f2 arrives for both; f1 (1 s) also done for the second rule
    assert counters(http.get(f"/rules/{first}").json()) == ("OK", 1, 0, 0)
    assert counters(http.get(f"/rules/{second}").json()) == ("REPLICATING", 2, 1, 0)


def test_deleting_a_rule_keeps_completed_replicas_and_cancels_the_rest(serve: Any) -> None:
    site = serve()
    http = site.authed()
    rule_id = new_rule(http)
    site.clock.advance(1.5)
    assert http.delete(f"/rules/{rule_id}").status_code == 200
    missing = http.get(f"/rules/{rule_id}")
    assert missing.status_code == 404
    assert missing.headers["ExceptionClass"] == "RuleNotFound"
    site.clock.advance(100)
    body = {"dids": [{"scope": "user", "name": "ds"}], "rse_expression": B}
    states = {
        line["name"]: line["states"]
        for line in stream_lines(http.post("/replicas/list", json=body))
    }
    assert states == {"f1": {B: "AVAILABLE"}, "f2": {}, "f3": {}}


def test_rule_lifetime_expires_the_rule_but_not_its_replicas(serve: Any) -> None:
    site = serve()
    http = site.authed()
    rule_id = new_rule(http, "user:f1", lifetime=60)
    assert http.get(f"/rules/{rule_id}").json()["expires_at"].endswith(" UTC")
    site.clock.advance(61)
    assert http.get(f"/rules/{rule_id}").status_code == 404
    assert site.catalogue.available("user", "f1", site.clock()) == {A, B}


def test_rules_survive_an_emulator_restart_through_the_state_file(tmp_path: Path) -> None:
    clock = Clock()
    config = make_config(tmp_path, state_file=tmp_path / "state.json")
    first = RucioCatalogue(config, clock)
    [rule_id] = first.add_rules("root", [("user", "ds")], 1, B)
    clock.advance(1.5)
    again = RucioCatalogue(config, clock)
    assert again.rule(rule_id).counters(clock()) == (1, 2, 0)
    clock.advance(5)
    assert again.rule(rule_id).state(clock()) == "OK"


# -- refusals, in Rucio's terms ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "exception_class"),
    [
        ({"dids": [{"scope": "user", "name": "nope"}]}, 404, "DataIdentifierNotFound"),
        ({"rse_expression": "NOT-AN-RSE"}, 409, "InvalidRSEExpression"),
        ({"rse_expression": "site=beta|(tier=2"}, 409, "InvalidRSEExpression"),
        ({"copies": 4, "rse_expression": "*"}, 409, "InsufficientTargetRSEs"),
        ({"dids": "user:ds"}, 409, "InvalidObject"),
    ],
)
def test_invalid_rules_are_refused(
    serve: Any, body: dict[str, Any], status: int, exception_class: str
) -> None:
    http = serve().authed()
    full = {"dids": [{"scope": "user", "name": "ds"}], "copies": 1, "rse_expression": B, **body}
    response = http.post("/rules/", json=full)
    assert response.status_code == status
    assert response.headers["ExceptionClass"] == exception_class
    assert response.json()["ExceptionClass"] == exception_class


def test_a_duplicate_rule_is_refused(serve: Any) -> None:
    http = serve().authed()
    rule_id = new_rule(http)
    again = http.post(
        "/rules/",
        json={"dids": [{"scope": "user", "name": "ds"}], "copies": 1, "rse_expression": B},
    )
    assert again.status_code == 409
    assert again.json()["ExceptionClass"] == "DuplicateRule"
    assert rule_id in again.json()["ExceptionMessage"]


def test_injected_faults_answer_before_the_api(serve: Any) -> None:
    site = serve()
    http = site.authed()
    rules = [{"method": "POST", "path": "^/rules", "error_rate": 1.0, "status": 503}]
    assert site.http.put("/_emulator/faults", json=rules).status_code == 200
    assert http.post("/rules/", json={}).status_code == 503
    assert site.http.get("/_emulator/calls").json()["POST /rules/"] == 1


# -- the real client reads everything the emulator says ------------------------------------


def test_real_client_reads_dids_rses_rules_and_replicas(serve: Any, rucio_client: Any) -> None:
    site = serve()
    client = rucio_client(site.url)
    nested = client.get_did("user", "dir/nested.fits")
    assert (nested["type"], nested["bytes"]) == ("FILE", 100)
    assert client.get_metadata("user", "ds")["length"] == 3
    assert [f["name"] for f in client.list_files("user", "ds")] == ["f1", "f2", "f3"]
    assert [r["rse"] for r in client.list_rses("tier>0")] == [B, C]
    assert client.list_rse_attributes(B) == {B: True, "site": "beta", "rse_type": "DISK", "tier": 1}
    assert client.get_rse(A)["protocols"][0]["scheme"] == "file"

    [rule_id] = client.add_replication_rule([{"scope": "user", "name": "ds"}], 1, "site=beta")
    rule = client.get_replication_rule(rule_id)
    assert (rule["state"], rule["rse_expression"], rule["account"]) == (
        "REPLICATING",
        "site=beta",
        "root",
    )
    assert rule["created_at"].year >= 2020  # the client parsed Rucio's date format
    assert [r["id"] for r in client.list_did_rules("user", "ds")] == [rule_id]
    site.clock.advance(4)
    assert {lock["state"] for lock in client.list_replica_locks(rule_id)} == {"OK"}
    replicas = list(client.list_replicas([{"scope": "user", "name": "ds"}], rse_expression=B))
    assert all(set(r["states"]) == {B} for r in replicas)
    with pytest.raises(rucio_errors.DuplicateRule):
        client.add_replication_rule([{"scope": "user", "name": "ds"}], 1, "site=beta")
    assert client.delete_replication_rule(rule_id) is True
    with pytest.raises(rucio_errors.RuleNotFound):
        client.get_replication_rule(rule_id)
    with pytest.raises(rucio_errors.DataIdentifierNotFound):
        client.get_did("user", "missing")


def test_real_clock_rule_completes(
    switchboard: Switchboard, tmp_path: Path, rucio_client: Any
) -> None:
    switch = switchboard("rucio")
    switch.app = create_app(make_config(tmp_path, links=[], default_bandwidth=20 * MB))
    client = rucio_client(switch.url)
    [rule_id] = client.add_replication_rule([{"scope": "user", "name": "ds"}], 1, B)
    assert client.get_replication_rule(rule_id)["state"] == "REPLICATING"
    deadline = time.monotonic() + 10
    while client.get_replication_rule(rule_id)["state"] != "OK":
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- pure parts ----------------------------------------------------------------------------


RSES: dict[str, dict[str, str | int | float | bool]] = {
    A: {A: True, "site": "alpha", "tier": 1},
    B: {B: True, "site": "beta", "tier": 1, "tape": False},
    C: {C: True, "site": "gamma", "tier": 2, "tape": True},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (A, [A]),
        ("*", [A, B, C]),
        ("tier=1", [A, B]),
        ("tier<2", [A, B]),
        ("tier>1", [C]),
        (f"{A}|{C}", [A, C]),
        ("tier=1&site=beta", [B]),
        ("*\\tape", [A, B]),
        ("tape=false", [B]),
        (f"(tier=1\\{A})|{C}", [B, C]),
    ],
)
def test_rse_expressions(expression: str, expected: list[str]) -> None:
    assert resolve(expression, RSES) == expected


@pytest.mark.parametrize("expression", ["", "tier=9", "(tier=1", "tier=1|", "|", f"{A})"])
def test_bad_or_empty_rse_expressions(expression: str) -> None:
    with pytest.raises(InvalidRSEExpression):
        resolve(expression, RSES)


def test_generated_checksum_matches_the_bytes_written(tmp_path: Path) -> None:
    content = FileContent("user", "x", 70_000)
    write_content(content, tmp_path / "x")
    assert content.adler32() == f"{zlib.adler32((tmp_path / 'x').read_bytes()):08x}"
    source = tmp_path / "real.bin"
    source.write_bytes(bytes(range(256)) * 300)
    copied = FileContent("user", "real", source.stat().st_size, source)
    write_content(copied, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == source.read_bytes()
    assert copied.adler32() == f"{zlib.adler32(source.read_bytes()):08x}"


def test_deterministic_path_follows_rucio_hash_convention() -> None:
    digest = hashlib.md5(b"user:f1").hexdigest()
    assert deterministic_path("user", "f1") == f"user/{digest[:2]}/{digest[2:4]}/f1"


def test_configuration_refuses_unknown_references(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown RSE"):
        make_config(tmp_path, files=[FileConfig(scope="user", name="f", bytes=1, rses=["NOPE"])])
    with pytest.raises(ValueError, match="unknown file"):
        make_config(tmp_path, datasets=[DatasetConfig(scope="user", name="d", files=["zz"])])
    with pytest.raises(ValueError, match="needs `bytes` or `source`"):
        FileConfig(scope="user", name="f")
