"""Emulated Execution Brokers: many sites served by one process, one port per site.

Each site answers ``POST /requests`` (alias ``/offersets``) the way the product's broker does
(``worksteps.broker.api.routes.post_request``): HTTP 303, ``Location`` naming the new offer
set, and the offer set in the body: ``result: YES``, ``expires``, and ``offers`` offers, each a
scheduled execution session built from the request as the broker's ``assembly`` builds it
(fresh UUIDs and URLs, components INITIALIZING with the session's schedule, the requested
minimum granted as ``min == max``, phase OFFERED with its options). The body is about 8 KB, as
a real broker's answer to the same request. There is no planner and no database: the answer is
ready after the site's configured latency (``asyncio.sleep``), measured from the moment the
request's first bytes were read. A hanging site reads the request and never answers.

HTTP/1.1 (keep-alive, Content-Length bodies) is served by :class:`BrokerConnection`, an
asyncio protocol around httptools' parser (the one uvicorn uses), with no ASGI layers: 50
brokers share this one process and its core, where on separate hosts each would handle only
its own request. Through uvicorn and ASGI the 50 requests of a fan-out, which arrive together,
took 10-25 ms to reach the last of them, counted against the client; here ~0.05 ms each.

For every answer the process notes when the request's first bytes were read and when the
answer was written (``time.monotonic``: ``CLOCK_MONOTONIC``, shared by every process of the
machine), by the bearer token the request carried, so the benchmark can ask afterwards what
the brokers did during one execution (``GET /_bench/observed?token=…`` on any port: site →
``[arrived, answered]``; the entries are removed as they are read).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs

import httptools

from worksteps.schema import kinds

__all__ = ["BrokerConnection", "BrokerPlan", "EmulatedBrokers", "offer_set"]

Doc = dict[str, Any]

PREPARING = timedelta(minutes=1)
OFFER_TTL = timedelta(minutes=5)
RELEASE = "PT10S"


@dataclass(frozen=True)
class BrokerPlan:
    """One emulated site: its name and how long it takes to answer (None: it never does)."""

    name: str
    latency: float | None

    @property
    def hanging(self) -> bool:
        return self.latency is None


def _instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _hours(text: str | None) -> float:
    """The hours of an ISO 8601 duration such as ``PT2H`` or ``PT90M`` (1 when unreadable)."""
    if not text or not text.startswith("PT"):
        return 1.0
    units = {"H": 1.0, "M": 1 / 60, "S": 1 / 3600}
    total, number = 0.0, ""
    for char in text[2:]:
        if char in units:
            total += float(number or 0) * units[char]
            number = ""
        else:
            number += char
    return total or 1.0


def _component(item: Doc, family: str, base: str, created: str, schedule: Doc) -> Doc:
    uuid = str(uuidlib.uuid4())
    given = item.get("meta", {})
    meta: Doc = {"uuid": uuid}
    if "name" in given:
        meta["name"] = given["name"]
    meta |= {"url": f"{base}/{family}/{uuid}", "created": created}
    copy: Doc = {"kind": item["kind"], "meta": meta, "phase": "INITIALIZING", "schedule": schedule}
    for key, value in item.items():
        copy.setdefault(key, value)
    return copy


def _granted(value: Any) -> Doc:
    low = value.get("min") if isinstance(value, dict) else None
    return {"min": low or 1, "max": low or 1}


def offer_set(request: Doc, base: str, now: datetime, offers: int) -> tuple[str, Doc]:
    """The offer set (its UUID and document) a broker at ``base`` answers to ``request``:
    ``offers`` offers starting one after the other, an hour apart."""
    created = _instant(now)
    expires = _instant(now + OFFER_TTL)
    hours = _hours(((request.get("schedule") or {}).get("requested") or {}).get("duration"))
    name = (request.get("meta") or {}).get("name") or "request"
    sessions = []
    for index in range(offers):
        start = now + PREPARING + timedelta(hours=index)
        end = start + timedelta(hours=hours)
        schedule = {
            "preparing": {"start": _instant(start - PREPARING), "duration": "PT1M"},
            "available": {"start": f"{_instant(start)}/PT0S", "duration": f"PT{hours:g}H"},
            "releasing": {"start": _instant(end), "duration": RELEASE},
        }
        compute = _component(request["compute"], "compute", base, created, schedule)
        compute["cores"] = _granted(compute.get("cores"))
        compute["memory"] = _granted(compute.get("memory"))
        uuid = str(uuidlib.uuid4())
        option = {"kind": "uri:enum-value-option", "path": "phase"}
        meta = {
            "uuid": uuid,
            "name": f"{name}-offer-{index}",
            "url": f"{base}/sessions/{uuid}",
            "created": created,
            "modified": created,
            "options": [option | {"values": ["ACCEPTED", "REJECTED"]}],
        }
        sessions.append(
            {
                "kind": kinds.SESSION_SCHEDULED,
                "meta": meta,
                "phase": "OFFERED",
                "expires": expires,
                "executable": _component(
                    request["executable"], "executables", base, created, schedule
                ),
                "compute": compute,
                "schedule": schedule,
            }
        )
    uuid = str(uuidlib.uuid4())
    document = {
        "kind": kinds.OFFERSET,
        "meta": {"uuid": uuid, "name": name, "url": f"{base}/offersets/{uuid}"},
        "result": "YES",
        "offers": sessions,
        "expires": expires,
    }
    return uuid, document


_REASONS = {200: b"OK", 303: b"See Other", 400: b"Bad Request", 404: b"Not Found"}


class EmulatedBrokers:
    """What every emulated site answers; ``sites`` maps each local port to its site."""

    def __init__(self, sites: dict[int, BrokerPlan], offers: int = 4) -> None:
        self.sites = sites
        self.offers = offers
        # token -> site -> [request in, answer written] (CLOCK_MONOTONIC, which every process
        # of the machine shares)
        self.observed: dict[str, dict[str, list[float]]] = {}

    async def answer(self, connection: BrokerConnection, request: Request) -> None:
        site = self.sites.get(connection.port)
        base = f"http://127.0.0.1:{connection.port}"
        if site is not None and request.method == "POST" and request.path in _OFFER_PATHS:
            if site.latency is None:
                return  # hanging: the request has been read; it is never answered
            await asyncio.sleep(max(0.0, request.arrived + site.latency - time.monotonic()))
            uuid, document = offer_set(
                json.loads(request.body), base, datetime.now(UTC), self.offers
            )
            location = f"{base}/offersets/{uuid}"
            answered = connection.send(303, document, location)
            token = request.bearer
            self.observed.setdefault(token, {})[site.name] = [request.arrived, answered]
        elif request.method == "GET" and request.path == "/_bench/observed":
            token = parse_qs(request.query).get("token", [""])[0]
            connection.send(200, self.observed.pop(token, {}))
        elif site is not None and request.method == "GET" and request.path == "/":
            connection.send(200, {"site": site.name, "emulated": True})
        else:
            connection.send(404, {"detail": f"no {request.method} {request.path} here"})


_OFFER_PATHS = ("/requests", "/offersets")


@dataclass
class Request:
    """One request as read: method, path, query, bearer token, body, when it began to arrive."""

    method: str
    path: str
    query: str
    bearer: str
    body: bytes
    arrived: float


class BrokerConnection(asyncio.Protocol):
    """One client connection to one emulated site: requests parsed by httptools, one at a
    time (the client waits for each answer), each answered by :meth:`EmulatedBrokers.answer`."""

    def __init__(self, brokers: EmulatedBrokers, port: int) -> None:
        self.brokers = brokers
        self.port = port
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.WriteTransport | None = None
        self.arrived: float | None = None
        self.url = b""
        self.bearer = ""
        self.body: list[bytes] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.arrived is None:
            self.arrived = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send(400, {"detail": "not HTTP/1.1"})
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for task in self.tasks:
            task.cancel()

    # httptools' callbacks
    def on_message_begin(self) -> None:
        self.url, self.bearer, self.body = b"", "", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"authorization":
            self.bearer = value.decode("latin-1").removeprefix("Bearer ")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self.url)
        request = Request(
            method=self.parser.get_method().decode(),
            path=(url.path or b"/").decode(),
            query=(url.query or b"").decode(),
            bearer=self.bearer,
            body=b"".join(self.body),
            arrived=self.arrived if self.arrived is not None else time.monotonic(),
        )
        self.arrived = None
        task = asyncio.get_running_loop().create_task(self.brokers.answer(self, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def send(self, status: int, body: Any, location: str | None = None) -> float:
        """Write one JSON answer; when it was written."""
        content = json.dumps(body).encode()
        head = [
            b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"")),
            b"content-type: application/json",
            b"content-length: %d" % len(content),
        ]
        if location is not None:
            head.append(b"location: " + location.encode())
        written = time.monotonic()
        if self.transport is not None:
            self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + content)
        return written
