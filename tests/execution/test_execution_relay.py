"""The chosen session followed through the execution service: poll, long-poll relayed with
the broker's own ``?wait=``, and server-sent events relayed with the broker's ids (resumable
with Last-Event-ID, reconnected when the broker's stream breaks); the provenance record is
written when the session ends."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from execution_support import (
    Broker,
    Execution,
    ServeExecution,
    StreamBreaker,
    notebook,
    site_entry,
    sqlite_only,
    sse_events,
)

from worksteps.core.serving import serve_in_thread


def _selected(client: httpx.Client, site: str | None = None) -> tuple[str, dict[str, Any]]:
    body = client.post("/executions", json={"request": notebook(2, 4)}).json()
    offer = next(o for o in body["offers"] if site is None or o["site"] == site)
    answer = client.post(f"/executions/{body['id']}/select", json={"offer": offer["offer"]})
    assert answer.status_code == 200, answer.text
    return body["id"], offer


def _phases(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["id"], e["data"]["phase"]) for e in events if e["event"] == "phase"]


def test_long_poll_answers_as_soon_as_the_session_changes_at_the_broker(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    with execution.client(oidc.headers("alice")) as client:
        execution_id, offer = _selected(client, "site-b")
        quick = client.get(f"/executions/{execution_id}")
        assert quick.json()["session"]["phase"] == "ACCEPTED"
        # the session changes at the broker, not through this service
        threading.Timer(
            0.5,
            lambda: brokers["site-b"].client.post(
                f"/sessions/{offer['offer']}",
                json={"kind": "uri:enum-value-update", "path": "phase", "value": "CANCELLED"},
            ),
        ).start()
        started = time.monotonic()
        answer = client.get(f"/executions/{execution_id}", params={"wait": 20})
        took = time.monotonic() - started
        assert answer.status_code == 200
        assert 0.4 < took < 5, took
        view = answer.json()
        assert view["session"]["phase"] == "CANCELLED" and view["state"] == "ended"
        # a final session answers a long-poll at once, and its record is there
        started = time.monotonic()
        assert client.get(f"/executions/{execution_id}", params={"wait": 20}).status_code == 200
        assert time.monotonic() - started < 2
        assert client.get(f"/executions/{execution_id}/provenance").status_code == 200
        too_long = client.get(f"/executions/{execution_id}", params={"wait": 301})
        assert too_long.status_code == 422


def test_events_are_relayed_with_the_brokers_ids_and_resume_after_last_event_id(
    execution: Execution, brokers: dict[str, Broker], oidc: Any
) -> None:
    headers = oidc.headers("alice")
    with execution.client(headers) as client:
        execution_id, _ = _selected(client, "site-a")
        unselected = client.post("/executions", json={"request": notebook()}).json()
        refused = client.get(f"/executions/{unselected['id']}/events")
        assert refused.status_code == 409 and refused.json()["reason"] == "not-selected"
    url = f"{execution.url}/executions/{execution_id}/events"
    seen: list[dict[str, Any]] = []

    def follow() -> None:
        seen.extend(sse_events(url, headers, lambda e: e["data"].get("phase") == "CANCELLED"))

    reader = threading.Thread(target=follow)
    reader.start()
    with execution.client(headers) as client:
        time.sleep(0.3)  # the stream is open and has relayed ACCEPTED
        assert client.post(f"/executions/{execution_id}/cancel").status_code == 200
    reader.join(20)
    assert _phases(seen) == [("1", "ACCEPTED"), ("2", "CANCELLED")], seen
    # resumed after event 1: only what came after, with the same id
    resumed = sse_events(url, headers | {"Last-Event-ID": "1"}, lambda e: e["event"] == "phase")
    assert _phases(resumed) == [("2", "CANCELLED")]
    with execution.client(headers) as client:
        view = client.get(f"/executions/{execution_id}").json()
    assert view["state"] == "ended" and view["provenance"] is True


@sqlite_only
def test_a_broken_broker_stream_is_reopened_after_the_last_event_relayed(
    brokers: dict[str, Broker], serve_execution: ServeExecution, oidc: Any
) -> None:
    breaker = StreamBreaker(brokers["site-c"].url, cut_after=1)
    headers = oidc.headers("alice")
    with serve_in_thread(breaker) as proxy:
        execution = serve_execution([site_entry("site-c", proxy.url)])
        with execution.client(headers) as client:
            execution_id, offer = _selected(client)
        seen: list[dict[str, Any]] = []
        url = f"{execution.url}/executions/{execution_id}/events"

        def follow() -> None:
            seen.extend(sse_events(url, headers, lambda e: e["data"].get("phase") == "CANCELLED"))

        reader = threading.Thread(target=follow)
        reader.start()
        time.sleep(0.6)  # ACCEPTED relayed, the stream broken and reopened
        brokers["site-c"].client.post(
            f"/sessions/{offer['offer']}",
            json={"kind": "uri:enum-value-update", "path": "phase", "value": "CANCELLED"},
        )
        reader.join(20)
    assert _phases(seen) == [("1", "ACCEPTED"), ("2", "CANCELLED")], seen
    notes = [e["data"] for e in seen if e["event"] == "relay"]
    assert notes and notes[0]["status"] == "reconnecting" and notes[0]["after"] == 1
    assert all("id" not in e for e in seen if e["event"] == "relay")
    assert breaker.streams >= 2
    # every call to the broker (offers, accept, status, events) carried the caller's identity
    assert breaker.authorizations == {headers["Authorization"]}
