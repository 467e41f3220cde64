"""Offers, selection and cancellation through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import yaml
from running import JSON, RunningBroker

from worksteps.schema.isotime import parse_instant, parse_interval


def _cores(offer: dict[str, Any]) -> int:
    return int(offer["compute"]["cores"]["min"])


def test_offers_respect_min_max_window_and_report_memory_as_memory(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    window = f"{start.isoformat()}/PT3H"
    response = broker.request(
        make_request((5, 6), (3, 9), schedule={"requested": {"duration": "PT1H", "start": window}})
    )
    assert response.status_code == 303
    offerset = response.json()
    assert response.headers["location"] == f"{broker.url}/offersets/{offerset['meta']['uuid']}"
    assert offerset["result"] == "YES"
    assert 2 <= len(offerset["offers"]) <= 4
    interval = parse_interval(window)
    for offer in offerset["offers"]:
        assert offer["phase"] == "OFFERED"
        assert 5 <= _cores(offer) <= 6
        memory = offer["compute"]["memory"]
        assert memory["min"] == memory["max"]
        assert 3 <= memory["min"] <= 9
        begins = parse_interval(offer["schedule"]["available"]["start"]).start
        assert interval.start <= begins <= interval.end
        assert offer["schedule"]["available"]["duration"] == "PT1H"
        assert offer["meta"]["options"] == [
            {"kind": "uri:enum-value-option", "path": "phase", "values": ["ACCEPTED", "REJECTED"]}
        ]
        assert parse_instant(offer["expires"]) > datetime.now(UTC)
    # max defaults to min, and never below it
    single = broker.offers(
        make_request((3, 3), (2, 2))
        | {"compute": {"kind": broker_kind("compute"), "cores": {"min": 3}, "memory": {"min": 2}}}
    )
    assert all(_cores(o) == 3 and o["compute"]["memory"]["max"] == 2 for o in single["offers"])


def broker_kind(family: str) -> str:
    names = {"compute": "compute/simple-compute-resource.yaml"}
    return "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/" + names[family]


def test_bookings_count_and_holds_are_released_on_reject(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    exact = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat()
    whole = make_request(
        (16, 16), (8, 8), schedule={"requested": {"duration": "PT1H", "start": exact}}
    )
    first = broker.offers(whole)
    assert first["result"] == "YES" and len(first["offers"]) == 1
    # The site (16 cores) is held by that offer: the same request now gets NO, with reasons.
    second = broker.offers(whole)
    assert second["result"] == "NO"
    texts = " ".join(m["message"] for m in second["meta"]["messages"])
    assert "cores" in texts and "at most 0" in texts
    assert "would fit from" in texts
    assert broker.update(first["offers"][0]["meta"]["uuid"], "REJECTED").status_code == 200
    third = broker.offers(whole)
    assert third["result"] == "YES"


def test_accept_rejects_siblings_and_cancel_releases(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    offerset = broker.offers(make_request((8, 16), (8, 8)))
    offers = offerset["offers"]
    assert len(offers) >= 2
    chosen = offers[1]["meta"]["uuid"]
    accepted = broker.update(chosen, "ACCEPTED")
    assert accepted.status_code == 200
    assert accepted.json()["phase"] == "ACCEPTED"
    assert accepted.json()["meta"]["options"][0]["values"] == ["CANCELLED"]
    for other in offers:
        if other["meta"]["uuid"] != chosen:
            assert broker.session(other["meta"]["uuid"])["phase"] == "REJECTED"
    again = broker.update(offers[0]["meta"]["uuid"], "ACCEPTED")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["status"] == 409 and "REJECTED" in problem["detail"]
    fresh = broker.client.get(f"/offersets/{offerset['meta']['uuid']}", headers=JSON).json()
    assert [o["phase"] for o in fresh["offers"]].count("ACCEPTED") == 1
    cancelled = broker.update(chosen, "CANCELLED")
    assert cancelled.status_code == 200 and cancelled.json()["phase"] == "CANCELLED"
    assert "options" not in cancelled.json()["meta"]
    assert broker.update(chosen, "CANCELLED").status_code == 409


def test_concurrent_accepts_of_siblings_exactly_one_wins(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    for _ in range(5):
        offers = broker.offers(make_request((1, 2), (1, 2)))["offers"]
        assert len(offers) >= 2
        results: list[int] = []
        barrier = threading.Barrier(len(offers))

        def accept(
            uuid: str, barrier: threading.Barrier = barrier, results: list[int] = results
        ) -> None:
            with httpx.Client(base_url=broker.url, timeout=30) as client:
                barrier.wait()
                change = {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}
                results.append(client.post(f"/sessions/{uuid}", json=change).status_code)

        threads = [threading.Thread(target=accept, args=(o["meta"]["uuid"],)) for o in offers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200] + [409] * (len(offers) - 1)


def test_direct_execution_accepts_one_offer(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    response = broker.client.post("/direct", json=make_request(), headers=JSON)
    assert response.status_code == 303
    session = response.json()
    assert session["phase"] == "ACCEPTED"
    assert response.headers["location"].endswith(session["meta"]["uuid"])
    alias = broker.client.post("/sessions", json=make_request(), headers=JSON)
    assert alias.status_code == 303
    refused = broker.client.post("/direct", json=make_request((999, 999)), headers=JSON)
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["session"]["phase"] == "FAILED"
    assert "cores" in problem["detail"]


def test_component_urls_resolve(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    doc = make_request(
        data=[
            {
                "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/simple-data-resource.yaml",
                "meta": {"name": "table"},
                "location": "https://example.org/t.vot",
            }
        ]
    )
    offer = broker.offers(doc)["offers"][0]
    urls = [
        offer["executable"]["meta"]["url"],
        offer["compute"]["meta"]["url"],
        offer["storage"][0]["meta"]["url"],
        offer["data"][0]["meta"]["url"],
    ]
    assert offer["storage"][0]["meta"]["name"] == "Storage for [table]"
    assert offer["data"][0]["storage"] == offer["storage"][0]["meta"]["uuid"]
    for url in urls:
        got = broker.client.get(url, headers=JSON)
        assert got.status_code == 200, url
        assert got.json()["meta"]["url"] == url


def test_media_types_both_ways(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    as_yaml = yaml.safe_dump(make_request())
    response = broker.client.post(
        "/offersets", content=as_yaml, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 303
    assert response.headers["content-type"].startswith("application/yaml")  # no Accept: spec
    offerset = yaml.safe_load(response.text)
    uuid = offerset["offers"][0]["meta"]["uuid"]
    as_xml = broker.client.get(f"/sessions/{uuid}", headers={"Accept": "application/xml"})
    assert as_xml.status_code == 200 and as_xml.text.startswith("<?xml")
    update = (
        '<?xml version="1.0"?><update kind="uri:enum-value-update"><path>phase</path>'
        "<value>ACCEPTED</value></update>"
    )
    done = broker.client.post(
        f"/sessions/{uuid}",
        content=update,
        headers={"Content-Type": "application/xml", "Accept": "*/*"},
    )
    assert done.status_code == 200, done.text
    assert "<phase>ACCEPTED</phase>" in done.text


def test_a_command_word_with_a_space_is_refused_with_the_reason(broker: RunningBroker) -> None:
    doc = {
        "executable": {
            "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml",
            "image": {"locations": ["images.example.org/skaha/terminal:1.1"]},
            "command": ["python3", "-c", "print('two words')"],
        }
    }
    offerset = broker.offers(doc)
    assert offerset["result"] == "NO"
    texts = " ".join(m["message"] for m in offerset["meta"]["messages"])
    assert "command word 3" in texts and "space" in texts
    doc["executable"]["command"] = ["python3", "-m", "platform"]
    assert broker.offers(doc)["result"] == "YES"
