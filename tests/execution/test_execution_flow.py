"""Execute, select, cancel and ownership through the execution service, over real HTTP, in
front of three real booking-only brokers; the service's store on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from execution_support import (
    Broker,
    BrokerDatabase,
    Execution,
    ServeExecution,
    notebook,
    site_entry,
    sqlite_only,
    start_broker,
)

from worksteps.schema.isotime import parse_instant
from worksteps.schema.provenance import read_provenance


def _execute(client: httpx.Client, request: dict[str, Any], **extra: Any) -> dict[str, Any]:
    answer = client.post("/executions", json={"request": request, **extra})
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"].endswith(f"/executions/{answer.json()['id']}")
    body: dict[str, Any] = answer.json()
    return body


def _earliest_start(broker: Broker, cores: int, memory: int) -> datetime:
    """When the broker could start a session of this size now (its probe offers rejected)."""
    offers = broker.offers(notebook(cores, memory))["offers"]
    for offer in offers:
        broker.client.post(
            f"/sessions/{offer['meta']['uuid']}",
            json={"kind": "uri:enum-value-update", "path": "phase", "value": "REJECTED"},
        )
    return min(parse_instant(o["schedule"]["preparing"]["start"]) for o in offers)


def test_every_broker_is_asked_and_the_offers_are_ranked_with_reasons(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    # site-a is fully booked for the next hour, so its offers start later and rank last
    busy = brokers["site-a"].offers(notebook(8, 32))["offers"][0]["meta"]["uuid"]
    brokers["site-a"].client.post(
        f"/sessions/{busy}",
        json={"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"},
    )
    with execution.client(oidc.headers("alice")) as client:
        body = _execute(client, notebook(2, 4), workstep={"uuid": str(busy), "version": 3})
    assert body["state"] == "offered" and body["owner"] == "alice"
    assert [b["site"] for b in body["brokers"]] == ["site-a", "site-b", "site-c"]
    for broker in body["brokers"]:
        assert broker["status"] == "offers", broker
        assert broker["offers"] and broker["elapsed"] is not None and broker["error"] is None
    offers = body["offers"]
    assert [o["rank"] for o in offers] == list(range(1, len(offers) + 1))
    totals = [o["score"]["total"] for o in offers]
    assert totals == sorted(totals)
    assert {o["site"] for o in offers} == {"site-a", "site-b", "site-c"}
    for offer in offers:
        assert offer["state"] == "offered" and not offer["expired"]
        assert offer["resources"] == {"cores": 2, "memory": 4}
        assert offer["duration"] == "PT1H"
        assert offer["session"].endswith(f"/sessions/{offer['offer']}")
        assert offer["locality"] == {"data": None, "image": None}  # booking-only brokers
        ready = parse_instant(offer["ready"])
        start = parse_instant(offer["start"])
        assert ready - start == timedelta(minutes=1)  # the brokers' preparing duration
        assert offer["reasons"][0].startswith("ready in ")
        assert any("locality not reported" in r for r in offer["reasons"])
        assert offer["reasons"][-1].startswith(f"rank {offer['rank']}: score")
    site_a = [o for o in offers if o["site"] == "site-a"]
    others = [o for o in offers if o["site"] != "site-a"]
    assert min(o["rank"] for o in site_a) > min(o["rank"] for o in others)
    assert parse_instant(site_a[0]["start"]) >= datetime.now(UTC) + timedelta(minutes=55)
    assert body["selected"] is None and body["session"] is None
    for name, broker in brokers.items():
        assert broker.requests_received() == (2 if name == "site-a" else 1)


def test_selecting_accepts_one_offer_and_rejects_every_other_at_every_broker(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    with execution.client(oidc.headers("alice")) as client:
        body = _execute(client, notebook(8, 32))
        held = _earliest_start(brokers["site-a"], 8, 32)
        assert held > datetime.now(UTC) + timedelta(minutes=30), "the offer holds site-a"
        chosen = next(o for o in body["offers"] if o["site"] == "site-b")
        answer = client.post(f"/executions/{body['id']}/select", json={"offer": chosen["offer"]})
        assert answer.status_code == 200, answer.text
        selected = answer.json()
    assert selected["state"] == "selected"
    assert selected["selected"]["offer"] == chosen["offer"]
    assert selected["selected"]["site"] == "site-b"
    assert selected["session"]["phase"] == "ACCEPTED"
    assert brokers["site-b"].phase(chosen["offer"]) == "ACCEPTED"
    others = [o for o in selected["offers"] if o["offer"] != chosen["offer"]]
    assert len(others) >= 2
    for offer in others:
        assert offer["state"] == "rejected", offer
        assert brokers[offer["site"]].phase(offer["offer"]) == "REJECTED"
    # the holds are gone: site-a and site-c could start a whole-site session at once
    for name in ("site-a", "site-c"):
        cores, memory = {"site-a": (8, 32), "site-c": (32, 128)}[name]
        assert _earliest_start(brokers[name], cores, memory) < datetime.now(UTC) + timedelta(
            seconds=30
        )
    # a second choice is refused, and so is a rejected offer
    with execution.client(oidc.headers("alice")) as client:
        again = client.post(f"/executions/{body['id']}/select", json={"offer": others[0]["offer"]})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["reason"] == "already-selected"


def test_only_one_of_two_concurrent_selections_wins(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    with execution.client(oidc.headers("alice")) as client:
        body = _execute(client, notebook(2, 4))
    picks = [
        next(o for o in body["offers"] if o["site"] == "site-a"),
        next(o for o in body["offers"] if o["site"] == "site-c"),
    ]
    results: list[httpx.Response] = []
    gate = threading.Barrier(2)

    def select(offer: dict[str, Any]) -> None:
        with execution.client(oidc.headers("alice")) as client:
            gate.wait()
            results.append(
                client.post(f"/executions/{body['id']}/select", json={"offer": offer["offer"]})
            )

    threads = [threading.Thread(target=select, args=(p,)) for p in picks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    phases = [brokers[p["site"]].phase(p["offer"]) for p in picks]
    assert sorted(phases) == ["ACCEPTED", "REJECTED"]


def test_an_expired_offer_cannot_be_selected(
    serve_execution: ServeExecution, oidc: Any, broker_database: BrokerDatabase
) -> None:
    broker = start_broker(
        "site-x", broker_database("site-x"), 8, 32, offer_ttl=timedelta(seconds=1)
    )
    try:
        execution = serve_execution([site_entry("site-x", broker.url)])
        with execution.client(oidc.headers("alice")) as client:
            body = _execute(client, notebook(2, 4))
            offer = body["offers"][0]
            expires = parse_instant(offer["expires"])
            assert expires <= datetime.now(UTC) + timedelta(seconds=1.5)
            while datetime.now(UTC) < expires + timedelta(milliseconds=100):
                threading.Event().wait(0.05)
            answer = client.post(f"/executions/{body['id']}/select", json={"offer": offer["offer"]})
            assert answer.status_code == 409, answer.text
            problem = answer.json()
            assert problem["reason"] == "offer-expired"
            assert offer["offer"] in problem["detail"] and "expired" in problem["detail"]
            view = client.get(f"/executions/{body['id']}").json()
            assert view["state"] == "expired"  # nothing is left to select
            assert all(o["expired"] and o["state"] == "expired" for o in view["offers"])
            listed = client.get("/executions").json()["executions"]
            assert [e["state"] for e in listed if e["id"] == body["id"]] == ["expired"]
        assert broker.faults.count("POST", r"^/sessions/") == 0  # the broker was not asked
    finally:
        broker.stop()


def test_cancel_before_choosing_rejects_every_offer(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    with execution.client(oidc.headers("alice")) as client:
        body = _execute(client, notebook(2, 4))
        answer = client.post(f"/executions/{body['id']}/cancel")
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "cancelled"
        for offer in answer.json()["offers"]:
            assert offer["state"] == "rejected"
            assert brokers[offer["site"]].phase(offer["offer"]) == "REJECTED"
        again = client.post(f"/executions/{body['id']}/cancel")
        assert again.status_code == 409 and again.json()["reason"] == "execution-cancelled"
        chosen = body["offers"][0]["offer"]
        late = client.post(f"/executions/{body['id']}/select", json={"offer": chosen})
        assert late.status_code == 409 and late.json()["reason"] == "execution-cancelled"


def test_cancelling_the_session_ends_it_and_writes_its_provenance(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    workstep = {"uuid": "8a0c2a7e-6a7b-4a8e-9d3c-2f7d3b1c0a11", "version": 2, "name": "cube"}
    with execution.client(oidc.headers("alice")) as client:
        body = _execute(client, notebook(2, 4), workstep=workstep)
        chosen = body["offers"][0]
        client.post(f"/executions/{body['id']}/select", json={"offer": chosen["offer"]})
        missing = client.get(f"/executions/{body['id']}/provenance")
        assert missing.status_code == 404 and missing.json()["reason"] == "no-provenance-yet"
        answer = client.post(f"/executions/{body['id']}/cancel")
        assert answer.status_code == 200, answer.text
        view = answer.json()
        assert view["state"] == "ended" and view["session"]["phase"] == "CANCELLED"
        assert view["session"]["ended"] is not None and view["provenance"] is True
        assert brokers[chosen["site"]].phase(chosen["offer"]) == "CANCELLED"
        again = client.post(f"/executions/{body['id']}/cancel")
        assert again.status_code == 409
        record = client.get(f"/executions/{body['id']}/provenance")
        assert record.status_code == 200, record.text
    prov = read_provenance(record.json())
    assert prov.site == chosen["site"] and prov.phase == "CANCELLED"
    assert prov.session == chosen["session"]
    assert prov.broker == brokers[chosen["site"]].url
    assert prov.workstep is not None and str(prov.workstep.uuid) == workstep["uuid"]
    assert prov.workstep.version == 2
    assert prov.request.model_dump(mode="json", exclude_none=True) == body["request"]
    assert prov.started is not None and prov.ended is not None and prov.ended >= prov.started
    assert prov.offer is not None and prov.offer["offer"] == chosen["offer"]


def test_another_users_execution_is_not_found_and_an_admin_sees_all(
    execution: Execution, oidc: Any
) -> None:
    with execution.client(oidc.headers("alice")) as alice:
        body = _execute(alice, notebook(2, 4))
        mine = alice.get("/executions").json()["executions"]
    assert [e["id"] for e in mine] == [body["id"]]
    offer = body["offers"][0]["offer"]
    with execution.client(oidc.headers("bob")) as bob:
        for method, path, payload in [
            ("GET", "", None),
            ("GET", "/provenance", None),
            ("GET", "/events", None),
            ("POST", "/select", {"offer": offer}),
            ("POST", "/cancel", None),
        ]:
            answer = bob.request(method, f"/executions/{body['id']}{path}", json=payload)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["reason"] == "execution-not-found"
        assert bob.get("/executions").json()["executions"] == []
    with execution.client(oidc.headers("root", roles=["admin"])) as admin:
        assert admin.get(f"/executions/{body['id']}").json()["owner"] == "alice"
        assert [e["id"] for e in admin.get("/executions").json()["executions"]] == [body["id"]]
    with httpx.Client(base_url=execution.url) as anonymous:
        assert anonymous.get(f"/executions/{body['id']}").status_code == 401
        assert anonymous.post("/executions", json={"request": notebook()}).status_code == 401
        assert anonymous.get("/health").status_code == 200
    with execution.client(oidc.headers("alice")) as alice:
        still = alice.get(f"/executions/{body['id']}").json()
    assert still["state"] == "offered"  # bob's attempts changed nothing


@sqlite_only
def test_a_bad_request_is_422_and_nothing_is_sent(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    inverted = notebook()
    inverted["compute"]["cores"] = {"min": 8, "max": 2}
    misspelt = notebook() | {"excutable": {}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"request": inverted}, "request.compute.cores"),
        ({"request": misspelt}, "request.excutable"),
        ({"request": {"compute": notebook()["compute"]}}, "request.executable"),
        ({"request": notebook(), "deadline": 3600}, "deadline"),
        ({"request": notebook(), "deadline": -1}, "deadline"),
        ({"request": notebook(), "workstep_url": "http://127.0.0.1:1/w"}, "body"),
        ({"request": notebook(), "sites": ["site-z"]}, "sites"),
        ({"request": notebook(), "workstep": {"uuid": "x", "version": 0}}, "workstep.uuid"),
        ({}, "body"),
    ]
    with execution.client(oidc.headers("alice")) as client:
        for payload, field in cases:
            answer = client.post("/executions", json=payload)
            assert answer.status_code == 422, (payload, answer.text)
            problem = answer.json()
            assert answer.headers["content-type"] == "application/problem+json"
            assert any(e["field"].startswith(field) for e in problem["errors"]), problem
        broken = client.post(
            "/executions", content=b'{"request": ', headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 400
        assert client.get("/executions").json()["executions"] == []
    assert all(b.requests_received() == 0 for b in brokers.values())


@sqlite_only
def test_only_the_named_sites_are_asked(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    with execution.client(oidc.headers("alice")) as client:
        body = _execute(client, notebook(2, 4), sites=["site-c"])
    assert [b["site"] for b in body["brokers"]] == ["site-c"]
    assert {o["site"] for o in body["offers"]} == {"site-c"}
    assert [b.requests_received() for b in brokers.values()] == [0, 0, 1]
