"""The three sites of the embedded federation answer differently, and really prepare."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from worksteps.federation import Federation
from worksteps.schema import kinds

JSON = {"Accept": "application/json"}  # and alice's token, once the federation is up


@pytest.fixture(scope="module", autouse=True)
def signed_in(federation: Federation) -> None:
    JSON["Authorization"] = f"Bearer {federation.issuer.mint('alice')}"


def _request(federation: Federation, image: str, *data: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "executable": {
            "kind": kinds.EXEC_DOCKER,
            "meta": {"name": "lister"},
            "image": {"locations": [federation.image(image)]},
            "command": ["ls", "-lRL", "arc/home"],
        },
        "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 1}, "memory": {"min": 1}},
        "data": [
            {"kind": kinds.DATA_RUCIO, "meta": {"name": n}, "rucio": {"scope": "demo", "object": n}}
            for n in data
        ],
        "schedule": {"requested": {"duration": "PT10M"}},
    }
    doc.update(extra)
    return doc


def _locality(offer: dict[str, Any]) -> dict[str, str]:
    found = [m for m in offer["meta"]["messages"] if m["kind"] == "urn:data-locality"]
    values: dict[str, str] = found[0]["values"]
    return values


def _offers(url: str, doc: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{url}/requests", json=doc, headers=JSON, timeout=30)
    assert answer.status_code == 303, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _update(url: str, uuid: str, phase: str) -> None:
    answer = httpx.post(
        f"{url}/sessions/{uuid}",
        json={"kind": "uri:enum-value-update", "path": "phase", "value": phase},
        headers=JSON,
    )
    assert answer.status_code == 200, answer.text


def test_each_site_knows_where_the_data_and_images_are(federation: Federation) -> None:
    doc = _request(federation, "skaha/carta:4.1", "vlass-cube-0001.fits")
    seen = {}
    for site in federation.sites:
        offerset = _offers(site.url, doc)
        assert offerset["result"] == "YES", offerset
        seen[site.spec.name] = _locality(offerset["offers"][0])
        for offer in offerset["offers"]:
            _update(site.url, offer["meta"]["uuid"], "REJECTED")
    assert seen == {
        "site-a": {"data": "local", "image": "remote"},
        "site-b": {"data": "remote", "image": "cached"},
        "site-c": {"data": "remote", "image": "remote"},
    }


def _follow(url: str, uuid: str, until: set[str], timeout: float = 120) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", f"{url}/sessions/{uuid}/events", headers=JSON) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
                if seen[-1].get("phase") in until:
                    break
            assert time.monotonic() < deadline, seen
    return seen


def test_a_notebook_with_remote_data_becomes_a_working_jupyterlab(federation: Federation) -> None:
    site = federation.site("site-c")  # the data is at site-b, the notebook image upstream
    notebook = {
        "executable": {
            "kind": kinds.EXEC_JUPYTER,
            "meta": {"name": "nb"},
            "location": f"{site.url}/openapi.json",
        },
        "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 2}, "memory": {"min": 4}},
        "data": [
            {
                "kind": kinds.DATA_RUCIO,
                "meta": {"name": "askap"},
                "rucio": {"scope": "demo", "object": "askap-obs-0002.ms.tar"},
            }
        ],
        "schedule": {"requested": {"duration": "PT10M"}},
    }
    offerset = _offers(site.url, notebook)
    chosen = offerset["offers"][0]["meta"]["uuid"]
    _update(site.url, chosen, "ACCEPTED")
    events = _follow(site.url, chosen, {"AVAILABLE", "FAILED"})
    assert events[-1]["phase"] == "AVAILABLE", events
    kinds_seen = {e.get("kind") for e in events}
    assert {"stage", "place", "image", "launch"} <= kinds_seen, kinds_seen
    session = httpx.get(f"{site.url}/sessions/{chosen}", headers=JSON).json()
    link = session["connectors"][0]["location"]
    assert httpx.get(link, follow_redirects=True, timeout=30).status_code == 200
    staged = site.rig.home.rglob("askap-obs-0002.ms.tar")
    assert any(p.stat().st_size == 2 * 1024 * 1024 for p in staged)
    _update(site.url, chosen, "CANCELLED")
    _follow(site.url, chosen, {"COMPLETED", "CANCELLED", "FAILED"})
    whole = _request(federation, "skaha/terminal:1.1.2")
    whole["compute"] = {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 16}, "memory": {"min": 64}}
    assert _offers(site.url, whole)["result"] == "YES"  # the capacity is free again


def test_brokers_answer_only_their_owner(federation: Federation) -> None:
    site = federation.site("site-b")
    offerset = _offers(site.url, _request(federation, "skaha/terminal:1.1.2"))
    uuid = offerset["offers"][0]["meta"]["uuid"]
    assert httpx.get(f"{site.url}/sessions/{uuid}").status_code == 401
    forged = {"Authorization": "Bearer " + JSON["Authorization"].split()[1][:-4] + "abcd"}
    assert httpx.get(f"{site.url}/sessions/{uuid}", headers=forged).status_code == 401
    bob = {**JSON, "Authorization": f"Bearer {federation.issuer.mint('bob')}"}
    for path in (f"sessions/{uuid}", f"offersets/{offerset['meta']['uuid']}"):
        answer = httpx.get(f"{site.url}/{path}", headers=bob)
        assert answer.status_code == 404, answer.text
        unknown = httpx.get(f"{site.url}/{path[:-8]}00000000", headers=bob)
        assert answer.json()["reason"] == unknown.json()["reason"]
    refused = httpx.post(
        f"{site.url}/sessions/{uuid}",
        json={"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"},
        headers=bob,
    )
    assert refused.status_code == 404
    admin = {**JSON, "Authorization": f"Bearer {federation.issuer.mint('root', roles=['admin'])}"}
    assert httpx.get(f"{site.url}/sessions/{uuid}", headers=admin).status_code == 200
    _update(site.url, uuid, "REJECTED")
