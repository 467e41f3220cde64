"""Bad input gets a clear 4xx problem document (or result NO where the spec says so), and
nothing stored changes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from running import JSON, RunningBroker


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def _count_rows(broker: RunningBroker) -> int | None:
    url = broker.settings.database_url
    if not url.startswith("sqlite:///"):
        return None
    with sqlite3.connect(url[len("sqlite:///") :]) as conn:
        return int(conn.execute("SELECT count(*) FROM offersets").fetchone()[0])


@pytest.mark.parametrize(
    ("content", "media"),
    [
        (b'{"executable": ', "application/json"),
        (b"executable: [unclosed", "application/yaml"),
        (b"<offers-request><executable>", "application/xml"),
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaa">]><offers-request>&a;</offers-request>',
            "application/xml",
        ),
        (b"a: &x [1]\nb: *x\n", "application/yaml"),
        (b"[1, 2, 3]", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
    ],
)
def test_malformed_bodies_are_400(broker: RunningBroker, content: bytes, media: str) -> None:
    before = _count_rows(broker)
    body = _problem(
        broker.client.post("/requests", content=content, headers={"Content-Type": media}), 400
    )
    assert "traceback" not in str(body).lower()
    assert _count_rows(broker) == before


def test_unsupported_and_unacceptable_media(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    _problem(
        broker.client.post("/requests", content=b"x", headers={"Content-Type": "text/csv"}), 415
    )
    _problem(
        broker.client.post("/requests", json=make_request(), headers={"Accept": "text/html"}), 406
    )


def test_bodies_over_one_mebibyte_are_413(broker: RunningBroker) -> None:
    big = b'{"executable": {"meta": {"description": "' + b"x" * (1 << 20) + b'"}}}'
    _problem(broker.client.post("/requests", content=big, headers=JSON), 413)

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming too
        yield b'{"pad": "'
        for _ in range(40):
            yield b"y" * 32768
        yield b'"}'

    _problem(broker.client.post("/requests", content=chunks(), headers=JSON), 413)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"executable": {"kind": "https://example.org/unknown-kind"}}, "executable"),
        (
            {
                "compute": {
                    "kind": "https://www.purl.org/ivoa.net/EB/schema/v1.0//types/compute/"
                    "simple-compute-resource-1.0"
                }
            },
            "compute",
        ),
        (
            {
                "compute": {
                    "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/"
                    "kinds/compute/simple-compute-resource.yaml",
                    "cores": {"min": 8, "max": 4},
                }
            },
            "compute.cores",
        ),
        (
            {
                "compute": {
                    "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/"
                    "kinds/compute/simple-compute-resource.yaml",
                    "memory": {"min": -1},
                }
            },
            "memory.min",
        ),
        ({"schedule": {"requested": {"duration": "P1H"}}}, "schedule.requested.duration"),
        ({"schedule": {"requested": {"duration": "P1M"}}}, "schedule.requested.duration"),
        (
            {"schedule": {"requested": {"start": "2030-01-02T00:00:00Z/2030-01-01T00:00:00Z"}}},
            "schedule.requested.start",
        ),
        (
            {"schedule": {"requested": {"start": "2001-01-01T00:00:00Z/PT1H"}}},
            "schedule.requested.start",
        ),
        ({"cpus": 4}, "cpus"),
    ],
)
def test_invalid_requests_are_422_with_the_field(
    broker: RunningBroker,
    make_request: Callable[..., dict[str, Any]],
    change: dict[str, Any],
    field: str,
) -> None:
    before = _count_rows(broker)
    body = _problem(broker.request(make_request() | change), 422)
    assert any(e["field"].startswith(field) or field in e["field"] for e in body["errors"]), body
    assert _count_rows(broker) == before


def test_impossible_resources_get_no_with_reasons(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    offerset = broker.offers(make_request((10**9, 10**9)))
    assert offerset["result"] == "NO"
    assert offerset.get("offers", []) == []
    texts = [m["message"] for m in offerset["meta"]["messages"]]
    assert any("cores" in t and "16" in t for t in texts)
    assert any("never fit" in t for t in texts)


def test_semantic_refusals_are_no_with_spec_messages(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    no_exe = make_request()
    del no_exe["executable"]
    kinds = [m["kind"] for m in broker.offers(no_exe)["meta"]["messages"]]
    assert kinds == ["urn:executable-required"]
    bad_ref = make_request(
        data=[
            {
                "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/"
                "simple-data-resource.yaml",
                "meta": {"name": "d"},
                "location": "file:///etc/../etc/passwd",
                "storage": "nowhere",
            }
        ]
    )
    messages = broker.offers(bad_ref)["meta"]["messages"]
    assert {m["kind"] for m in messages} == {"urn:resource-not-found", "urn:invalid-value"}
    too_long = make_request(schedule={"requested": {"duration": "P30D"}})
    assert broker.offers(too_long)["result"] == "NO"
    late = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    not_ready = make_request(schedule={"requested": {"start": late}})
    texts = [m["message"] for m in broker.offers(not_ready)["meta"]["messages"]]
    assert any("cannot be ready before" in t for t in texts)


def test_invalid_updates_are_refused(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    post = broker.client.post
    _problem(
        post(
            f"/sessions/{uuid}",
            json={"kind": "uri:enum-value-update", "path": "phase", "value": "DANCING"},
            headers=JSON,
        ),
        422,
    )
    _problem(
        post(
            f"/sessions/{uuid}",
            json={"kind": "uri:enum-value-update", "path": "name", "value": "x"},
            headers=JSON,
        ),
        422,
    )
    _problem(
        post(
            f"/sessions/{uuid}",
            json={"kind": "uri:teleport-update", "path": "phase", "value": "x"},
            headers=JSON,
        ),
        422,
    )
    _problem(
        post(
            f"/sessions/{uuid}",
            json={"kind": "uri:integer-delta-update", "path": "phase", "delta": 1},
            headers=JSON,
        ),
        422,
    )
    _problem(broker.update(uuid, "COMPLETED"), 409)
    _problem(broker.update(uuid, "EXPIRED"), 409)
    assert broker.session(uuid)["phase"] == "OFFERED"


def test_unknown_uuids_are_404(broker: RunningBroker) -> None:
    for path in ("offersets", "sessions", "executables", "compute", "storage", "data", "volumes"):
        _problem(broker.client.get(f"/{path}/{uuid4()}", headers=JSON), 404)
    _problem(broker.update(str(uuid4()), "ACCEPTED"), 404)
    assert broker.client.get("/sessions/not-a-uuid", headers=JSON).status_code == 422
