"""What the service was doing when it stopped is finished when it starts again: a session
that ended meanwhile is recorded (its follower resumes) and a selection cut short between
the broker's ACCEPT and its recording is completed, the other offers rejected."""

from __future__ import annotations

import asyncio
from typing import Any

from execution_support import (
    Broker,
    BrokerDatabase,
    ServeExecution,
    notebook,
    site_entry,
    start_broker,
    wait_until,
)
from pydantic import SecretStr

from worksteps.core.auth import AuthSettings
from worksteps.core.clock import utcnow
from worksteps.core.database import Database
from worksteps.core.service_token import ServiceClientSettings
from worksteps.core.serving import free_port, serve_in_thread
from worksteps.emulators.oidc import LocalIssuer, OidcClient, SignInConfig
from worksteps.emulators.oidc import create_app as create_issuer_app
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


def test_a_restarted_service_follows_sessions_with_its_own_token(
    broker_database: BrokerDatabase, serve_execution: ServeExecution
) -> None:
    """Brokers that check tokens: after a restart no user's token is at hand, so the
    follower goes with the service's own (client credentials at the issuer)."""
    port = free_port()
    issuer = LocalIssuer(f"http://127.0.0.1:{port}")
    secret = "the-execution-service-secret"
    sign_in = SignInConfig(
        clients=[
            OidcClient(client_id="execution", secret=SecretStr(secret), service_roles=["admin"])
        ]
    )
    auth = AuthSettings(issuer=issuer.issuer, jwks_refresh=0)
    own = ServiceClientSettings(
        token_url=f"{issuer.issuer}/token", client_id="execution", client_secret=secret
    )
    alice = {"Authorization": f"Bearer {issuer.mint('alice')}"}
    with serve_in_thread(create_issuer_app(issuer, sign_in), port=port):
        broker = start_broker("site-a", broker_database("site-a"), 8, 32, auth=auth)
        try:
            sites = [site_entry("site-a", broker.url)]
            first = serve_execution(sites, auth=auth, service_client=own)
            with first.client(alice) as client:
                made = client.post("/executions", json={"request": notebook(2, 4)}).json()
                offer = made["offers"][0]["offer"]
                chosen = client.post(f"/executions/{made['id']}/select", json={"offer": offer})
                assert chosen.status_code == 200, chosen.text
            first.served.stop()
            cancel = {"kind": "uri:enum-value-update", "path": "phase", "value": "CANCELLED"}
            answer = broker.client.post(f"/sessions/{offer}", json=cancel, headers=alice)
            assert answer.status_code == 200, answer.text
            second = serve_execution(sites, auth=auth, service_client=own)
            with second.client(alice) as client:
                record = wait_until(
                    lambda: (
                        (r := client.get(f"/executions/{made['id']}/provenance")).status_code == 200
                        and r.json()
                    ),
                    timeout=10,
                )
            assert record["activity"]
        finally:
            broker.stop()
