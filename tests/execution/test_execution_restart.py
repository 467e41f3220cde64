"""What the service was doing when it stopped is finished when it starts again: a session
that ended meanwhile is recorded (its follower resumes) and a selection cut short between
the broker's ACCEPT and its recording is completed, the other offers rejected."""

from __future__ import annotations

import asyncio
from typing import Any

from execution_support import Broker, ServeExecution, notebook, site_entry, wait_until

from worksteps.core.clock import utcnow
from worksteps.core.database import Database
from worksteps.execution.store import Store


def _mark_selecting(database_url: str, execution: str, offer: str) -> None:
    """What a stop between ACCEPT and its recording leaves in the store."""

    async def mark() -> None:
        db = Database(database_url)
        try:
            store = Store(db)
            assert await store.move(execution, ["offered"], "selecting", utcnow(), selected=offer)
        finally:
            await db.dispose()

    asyncio.run(mark())


def test_unfinished_work_is_finished_at_start_up(
    brokers: dict[str, Broker], serve_execution: ServeExecution, database_url: str, oidc: Any
) -> None:
    sites = [site_entry(n, b.url) for n, b in brokers.items()]
    first = serve_execution(sites)
    with first.client(oidc.headers("alice")) as client:
        ending = client.post("/executions", json={"request": notebook(2, 4)}).json()
        ended_offer = ending["offers"][0]
        selected = client.post(
            f"/executions/{ending['id']}/select", json={"offer": ended_offer["offer"]}
        )
        assert selected.status_code == 200
        cut = client.post("/executions", json={"request": notebook(2, 4)}).json()
    first.served.stop()
    # while the service is down: one session ends, one offer is accepted at its broker
    cut_offer = next(o for o in cut["offers"] if o["site"] == "site-c")
    for broker, uuid, phase in [
        (brokers[ended_offer["site"]], ended_offer["offer"], "CANCELLED"),
        (brokers["site-c"], cut_offer["offer"], "ACCEPTED"),
    ]:
        answer = broker.client.post(
            f"/sessions/{uuid}",
            json={"kind": "uri:enum-value-update", "path": "phase", "value": phase},
        )
        assert answer.status_code == 200, answer.text
    _mark_selecting(database_url, cut["id"], cut_offer["offer"])

    second = serve_execution(sites)
    with second.client(oidc.headers("alice")) as client:
        # the provenance route never asks the broker: only the resumed follower can end it
        record = wait_until(
            lambda: (
                (r := client.get(f"/executions/{ending['id']}/provenance")).status_code == 200
                and r.json()
            ),
            timeout=10,
        )
        assert record["activity"]
        view = client.get(f"/executions/{cut['id']}").json()
    assert view["state"] == "selected", view
    assert view["selected"]["offer"] == cut_offer["offer"]
    assert view["session"]["phase"] == "ACCEPTED"
    for offer in view["offers"]:
        if offer["offer"] != cut_offer["offer"]:
            assert brokers[offer["site"]].phase(offer["offer"]) == "REJECTED"
            assert offer["state"] in ("rejected", "expired"), offer
