"""Stopping a broker is prompt: clients' long-polls and event streams end as soon as the
server begins to stop, and the engine's work, which is durable, is cut off and resumes at
the next start."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from running import JSON, RunningBroker, start_broker, stop_broker
from test_engine import _headless, _rucio

from worksteps.broker.settings import BrokerSettings
from worksteps.emulators.rig import SiteRig

PROMPT = 2.0  # seconds; uvicorn alone needs ~0.2 to stop


class Clients:
    """A long-poll and an event stream of one session, each in its own thread."""

    def __init__(self, broker: RunningBroker, uuid: str) -> None:
        self.answers: dict[str, Any] = {}
        self.threads = [
            threading.Thread(target=self._long_poll, args=(broker.url, uuid)),
            threading.Thread(target=self._stream, args=(broker.url, uuid)),
        ]
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)  # both are waiting at the broker

    def _long_poll(self, url: str, uuid: str) -> None:
        try:
            answer = httpx.get(f"{url}/sessions/{uuid}?wait=60", headers=JSON, timeout=90)
            self.answers["long-poll"] = answer.status_code
        except httpx.HTTPError as exc:
            self.answers["long-poll"] = repr(exc)

    def _stream(self, url: str, uuid: str) -> None:
        try:
            with httpx.stream("GET", f"{url}/sessions/{uuid}/events", timeout=90) as live:
                lines = list(live.iter_lines())
            self.answers["events"] = [json.loads(x[5:]) for x in lines if x.startswith("data:")]
        except httpx.HTTPError as exc:
            self.answers["events"] = repr(exc)

    def join(self) -> dict[str, Any]:
        for thread in self.threads:
            thread.join(10)
        return self.answers


def _stop(broker: RunningBroker) -> float:
    started = time.monotonic()
    stop_broker(broker)
    assert not broker.served.thread.is_alive(), "the server did not stop"
    return time.monotonic() - started


def test_stopping_answers_long_polls_and_ends_event_streams_at_once(
    broker_settings: BrokerSettings, make_request: Callable[..., dict[str, Any]]
) -> None:
    broker = start_broker(broker_settings)
    uuid = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    clients = Clients(broker, uuid)
    assert _stop(broker) < PROMPT
    answers = clients.join()
    assert answers["long-poll"] == 200  # the session as it is: the client polls again
    assert answers["events"] == []  # ended cleanly: the client resumes with Last-Event-ID


def test_a_broker_preparing_sessions_stops_at_once_and_resumes_them(
    rig: SiteRig, site_broker: RunningBroker
) -> None:
    direct = site_broker.client.post(
        "/direct", json=_headless(rig, _rucio("cube-0003.fits")), headers=JSON
    )
    assert direct.status_code == 303, direct.text
    uuid = direct.json()["meta"]["uuid"]
    deadline = time.monotonic() + 30
    while site_broker.session(uuid)["phase"] != "PREPARING":  # /direct sessions are prepared
        assert time.monotonic() < deadline, site_broker.session(uuid)
        time.sleep(0.1)
    clients = Clients(site_broker, uuid)
    assert _stop(site_broker) < PROMPT
    answers = clients.join()
    assert answers["long-poll"] == 200
    assert isinstance(answers["events"], list), answers

    again = start_broker(site_broker.settings)
    try:
        deadline = time.monotonic() + 60
        while (phase := again.session(uuid)["phase"]) not in ("COMPLETED", "FAILED"):
            assert time.monotonic() < deadline, phase
            time.sleep(0.2)
        assert phase == "COMPLETED", again.session(uuid)["meta"].get("messages")
    finally:
        stop_broker(again)
