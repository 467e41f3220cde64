"""Emulated Execution Brokers: many sites served by one ASGI app, one port per site.

Each site answers ``POST /requests`` (alias ``/offersets``) the way the product's broker does
(``worksteps.broker.api.routes.post_request``): HTTP 303, ``Location`` naming the new offer
set, and the offer set in the body: ``result: YES``, ``expires``, and ``offers`` offers, each a
scheduled execution session built from the request as the broker's ``assembly`` builds it
(fresh UUIDs and URLs, components INITIALIZING with the session's schedule, the requested
minimum granted as ``min == max``, phase OFFERED with its options). The body is about 8 KB, as
a real broker's answer to the same request. There is no planner and no database: the answer is
ready after the site's configured latency (``asyncio.sleep``), measured from the moment the
request's head has arrived. A hanging site reads the request and never answers; its handler
ends when the client goes away.

For every answer the app notes when the request's head arrived and when the answer was handed
to the server (``time.monotonic``: ``CLOCK_MONOTONIC``, shared by every process of the
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
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from worksteps.schema import kinds

__all__ = ["BrokerPlan", "EmulatedBrokers", "offer_set"]

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


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    content = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
    await send({"type": "http.response.start", "status": status, "headers": head + headers})
    await send({"type": "http.response.body", "body": content})


def _bearer(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"authorization":
            return str(value.decode("latin-1").removeprefix("Bearer "))
    return ""


class EmulatedBrokers:
    """The ASGI app of every emulated site; ``sites`` maps each local port to its site."""

    def __init__(self, sites: dict[int, BrokerPlan], offers: int = 4) -> None:
        self.sites = sites
        self.offers = offers
        # token -> site -> [request head in, answer handed over] (CLOCK_MONOTONIC, which every
        # process of the machine shares)
        self.observed: dict[str, dict[str, list[float]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        arrived = time.monotonic()
        host, port = scope["server"]
        site = self.sites.get(port)
        path, method = scope["path"], scope["method"]
        try:
            body = await _body(receive)
        except ConnectionError:
            return
        if site is not None and method == "POST" and path in ("/requests", "/offersets"):
            await self._offers(scope, receive, send, site, f"http://{host}:{port}", body, arrived)
        elif method == "GET" and path == "/_bench/observed":
            token = parse_qs(scope["query_string"].decode()).get("token", [""])[0]
            await _send_json(send, 200, self.observed.pop(token, {}), [])
        elif site is not None and method == "GET" and path == "/":
            await _send_json(send, 200, {"site": site.name, "emulated": True}, [])
        else:
            await _send_json(send, 404, {"detail": f"no {method} {path} here"}, [])

    async def _offers(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        site: BrokerPlan,
        base: str,
        body: bytes,
        arrived: float,
    ) -> None:
        if site.latency is None:
            # hanging: the request has been read; wait until the client gives up
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        await asyncio.sleep(max(0.0, arrived + site.latency - time.monotonic()))
        uuid, document = offer_set(json.loads(body), base, datetime.now(UTC), self.offers)
        self.observed.setdefault(_bearer(scope), {})[site.name] = [arrived, time.monotonic()]
        location = f"{base}/offersets/{uuid}".encode()
        await _send_json(send, 303, document, [(b"location", location)])
