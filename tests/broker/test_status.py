"""Following a session: poll, long-poll (?wait=N) and server-sent events with Last-Event-ID."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from running import JSON, RunningBroker


def _sse(
    client: httpx.Client, url: str, headers: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """Read ``count`` events from a server-sent event stream."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", url, headers=headers, timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id:"):
                current["id"] = int(line[3:].strip())
            elif line.startswith("event:"):
                current["event"] = line[6:].strip()
            elif line.startswith("data:"):
                current["data"] = json.loads(line[5:].strip())
            elif not line and "data" in current:
                events.append(current)
                current = {}
                if len(events) == count:
                    break
    return events


def test_long_poll_answers_when_the_session_changes(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    started = time.monotonic()
    quiet = broker.client.get(f"/sessions/{uuid}?wait=1", headers=JSON)
    assert quiet.json()["phase"] == "OFFERED"
    assert time.monotonic() - started >= 0.9

    timer = threading.Timer(0.5, lambda: broker.update(uuid, "ACCEPTED"))
    timer.start()
    started = time.monotonic()
    changed = broker.client.get(f"/sessions/{uuid}?wait=30", headers=JSON)
    elapsed = time.monotonic() - started
    timer.join()
    assert changed.json()["phase"] == "ACCEPTED"
    assert 0.4 <= elapsed < 5
    assert broker.client.get(f"/sessions/{uuid}?wait=-1").status_code == 422


def test_a_terminal_session_does_not_block(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    broker.update(uuid, "REJECTED")
    started = time.monotonic()
    assert broker.client.get(f"/sessions/{uuid}?wait=30", headers=JSON).json()["phase"] == (
        "REJECTED"
    )
    assert time.monotonic() - started < 2


def test_event_stream_resumes_from_last_event_id(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    offers = broker.offers(make_request())["offers"]
    uuid = offers[0]["meta"]["uuid"]
    broker.update(uuid, "ACCEPTED")
    broker.update(uuid, "CANCELLED")
    events = _sse(broker.client, f"/sessions/{uuid}/events", {}, 2)
    assert [e["data"]["phase"] for e in events] == ["ACCEPTED", "CANCELLED"]
    assert events[0]["event"] == "phase"
    assert events[0]["id"] < events[1]["id"]
    resumed = _sse(
        broker.client, f"/sessions/{uuid}/events", {"Last-Event-ID": str(events[0]["id"])}, 1
    )
    assert [e["data"]["phase"] for e in resumed] == ["CANCELLED"]
    sibling = offers[1]["meta"]["uuid"]
    assert [
        e["data"]["phase"] for e in _sse(broker.client, f"/sessions/{sibling}/events", {}, 1)
    ] == ["REJECTED"]


def test_event_stream_delivers_live_changes(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    timer = threading.Timer(0.5, lambda: broker.update(uuid, "ACCEPTED"))
    timer.start()
    with httpx.Client(base_url=broker.url) as client:
        events = _sse(client, f"/sessions/{uuid}/events", {}, 1)
    timer.join()
    assert events[0]["data"]["phase"] == "ACCEPTED"
    missing = broker.client.get("/sessions/00000000-0000-0000-0000-000000000000/events")
    assert missing.status_code == 404


def test_event_stream_of_an_ended_session_ends_after_its_final_phase(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    with httpx.Client(base_url=broker.url, timeout=10) as client:
        with client.stream("GET", f"/sessions/{uuid}/events") as live:
            broker.update(uuid, "ACCEPTED")
            broker.update(uuid, "CANCELLED")
            lines = list(live.iter_lines())  # returns only because the server ends the stream
        phases = [json.loads(x[5:])["phase"] for x in lines if x.startswith("data:")]
        assert phases == ["ACCEPTED", "CANCELLED"]
        ids = [int(x[3:]) for x in lines if x.startswith("id:")]
        assert ids == [1, 2]
        with client.stream(
            "GET", f"/sessions/{uuid}/events", headers={"Last-Event-ID": "2"}
        ) as after_end:
            assert not [x for x in after_end.iter_lines() if x.startswith("data:")]


def _stream_lines(client: httpx.Client, url: str, headers: dict[str, str]) -> list[str]:
    """All the lines of an event stream; a read timeout (no ping within 5 s: pings come every
    10 s) means the server did not end it."""
    with client.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=5)) as live:
        assert live.status_code == 200
        return list(live.iter_lines())


def test_event_stream_past_the_last_event_of_an_ended_session_ends_at_once(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    broker.update(uuid, "ACCEPTED")
    broker.update(uuid, "CANCELLED")
    for url, headers in (
        (f"/sessions/{uuid}/events?after=2", {}),
        (f"/sessions/{uuid}/events?after=99", {}),
        (f"/sessions/{uuid}/events", {"Last-Event-ID": "99"}),
    ):
        started = time.monotonic()
        lines = _stream_lines(broker.client, url, headers)
        assert not [x for x in lines if x.startswith("data:")], (url, lines)
        assert time.monotonic() - started < 2, url


def test_event_stream_past_the_last_event_ends_when_the_session_ends(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    """Its final phase event is not sent (the client asked for later ones), but the stream
    still ends with the session."""
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    timer = threading.Timer(0.5, lambda: broker.update(uuid, "REJECTED"))
    timer.start()
    with httpx.Client(base_url=broker.url) as client:
        started = time.monotonic()
        lines = _stream_lines(client, f"/sessions/{uuid}/events?after=10", {})
    timer.join()
    assert not [x for x in lines if x.startswith("data:")], lines
    assert time.monotonic() - started < 3
    assert broker.session(uuid)["phase"] == "REJECTED"
