"""Slow and dead brokers never block the answer: the offer set arrives at the deadline with
the others' offers and a status per broker, and a broker answering late has its offers
rejected at once (no capacity is left held)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from execution_support import (
    Broker,
    BrokerDatabase,
    ServeExecution,
    down_url,
    hanging_port,
    notebook,
    site_entry,
    sqlite_only,
    start_broker,
    wait_until,
)

from worksteps.emulators.faults import FaultRule
from worksteps.schema.isotime import parse_instant

DEADLINE = 1.0
LATE = 2.0  # the slow broker answers this long after the request


@pytest.fixture
def slow_broker(broker_database: BrokerDatabase) -> Iterator[Broker]:
    broker = start_broker(
        "site-slow",
        broker_database("site-slow"),
        8,
        32,
        rules=[FaultRule(method="POST", path="^/requests$", latency=LATE)],
    )
    try:
        yield broker
    finally:
        broker.stop()


def test_the_offer_set_arrives_at_the_deadline_with_a_status_per_broker(
    brokers: dict[str, Broker],
    slow_broker: Broker,
    serve_execution: ServeExecution,
    oidc: Any,
) -> None:
    with hanging_port() as hanging:
        sites = [
            site_entry("site-a", brokers["site-a"].url),
            site_entry("site-hangs", hanging),
            site_entry("site-down", down_url()),
            site_entry("site-slow", slow_broker.url),
            site_entry("site-b", brokers["site-b"].url),
        ]
        execution = serve_execution(sites)
        with execution.client(oidc.headers("alice")) as client:
            started = time.monotonic()
            answer = client.post(
                "/executions", json={"request": notebook(8, 32), "deadline": DEADLINE}
            )
            took = time.monotonic() - started
            assert answer.status_code == 201, answer.text
            body = answer.json()
            assert DEADLINE <= took < DEADLINE + 0.5, took
            status = {b["site"]: b for b in body["brokers"]}
            assert [b["site"] for b in body["brokers"]] == [s["name"] for s in sites]
            assert status["site-a"]["status"] == status["site-b"]["status"] == "offers"
            assert status["site-a"]["elapsed"] < DEADLINE
            assert status["site-hangs"]["status"] == "timeout"
            assert status["site-hangs"]["elapsed"] == DEADLINE
            assert "deadline" in status["site-hangs"]["error"]
            assert status["site-down"]["status"] == "error"
            assert "Connect" in status["site-down"]["error"]
            assert status["site-slow"]["status"] == "timeout"
            assert {o["site"] for o in body["offers"]} == {"site-a", "site-b"}
            assert body["state"] == "offered"

            # the slow broker answers after the deadline: its offers are rejected at once
            def late() -> dict[str, Any] | None:
                view = client.get(f"/executions/{body['id']}").json()
                found = next(b for b in view["brokers"] if b["site"] == "site-slow")
                return found if found["status"] == "late" else None

            slow = wait_until(late, timeout=LATE + 5)
    info = slow["late"]
    assert info["status"] == "offers" and info["offers"]
    assert info["rejected"] == info["offers"] and info["failed"] == []
    assert info["elapsed"] >= LATE
    for uuid in info["offers"]:
        assert slow_broker.phase(uuid) == "REJECTED"
    assert slow["offers"] == []  # never offered to the user
    # nothing is held at the slow broker: the whole site can be offered at once
    slow_broker.faults.rules = []
    whole = slow_broker.offers(notebook(8, 32))
    assert whole["result"] == "YES"
    first = parse_instant(whole["offers"][0]["schedule"]["preparing"]["start"])
    assert first < datetime.now(UTC) + timedelta(seconds=30)  # at once, not after the holds


@sqlite_only
def test_when_every_broker_is_dead_the_answer_still_comes_with_their_statuses(
    serve_execution: ServeExecution, oidc: Any
) -> None:
    with hanging_port() as hanging:
        execution = serve_execution(
            [site_entry("site-hangs", hanging), site_entry("site-down", down_url())]
        )
        with execution.client(oidc.headers("alice")) as client:
            started = time.monotonic()
            answer = client.post("/executions", json={"request": notebook(), "deadline": 0.5})
            assert time.monotonic() - started < 1.0
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["state"] == "no-offers" and body["offers"] == []
    assert [b["status"] for b in body["brokers"]] == ["timeout", "error"]


@sqlite_only
def test_a_no_answer_carries_the_brokers_messages(
    brokers: dict[str, Broker], serve_execution: ServeExecution, oidc: Any
) -> None:
    execution = serve_execution([site_entry(n, b.url) for n, b in brokers.items()])
    with execution.client(oidc.headers("alice")) as client:
        body = client.post("/executions", json={"request": notebook(24, 96)}).json()
    status = {b["site"]: b for b in body["brokers"]}
    for name in ("site-a", "site-b"):
        assert status[name]["status"] == "no"
        assert any("cores" in m for m in status[name]["messages"]), status[name]
    assert status["site-c"]["status"] == "offers"
    assert {o["site"] for o in body["offers"]} == {"site-c"}
