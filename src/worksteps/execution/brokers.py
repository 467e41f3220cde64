"""The IVOA ExecutionBroker calls of the execution service: they make one call and report
what the broker said. Policy (deadlines, which offers to reject, retries) is the caller's.

    BrokerError                 the call did not give what was asked
    ├── BrokerUnreachable       no answer: refused connection, timeout, broken stream
    ├── BrokerRefused           an HTTP error answer (4xx/5xx), with the broker's detail
    └── BrokerAnswerInvalid     an answer that is not the document it should be
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from pydantic import ValidationError

from worksteps.schema.documents import OfferSet
from worksteps.schema.legacy import normalize_session

__all__ = [
    "JSON_HEADERS",
    "BrokerAnswerInvalid",
    "BrokerError",
    "BrokerRefused",
    "BrokerUnreachable",
    "SseEvent",
    "ask_offers",
    "broker_client",
    "broker_posts",
    "read_json",
    "read_session",
    "session_events",
    "update_phase",
]

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class BrokerError(Exception):
    """A broker call failed; ``detail`` says how, in words a user can read."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BrokerUnreachable(BrokerError):
    pass


class BrokerRefused(BrokerError):
    def __init__(self, status: int, detail: str, reason: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.reason = reason


class BrokerAnswerInvalid(BrokerError):
    pass


def broker_client(brokers: Iterable[str], limits: httpx.Limits) -> httpx.AsyncClient:
    """The client for every call to ``brokers`` (base URLs) and anything else: one connection
    pool per broker origin (each with ``limits``), and one for the rest.

    httpcore's pool looks at every connection it holds, several times over, on each request
    it starts and each response it closes, and closes idle connections whenever it holds more
    than ``max_keepalive_connections`` of any kind (a hanging broker's calls count): with one
    pool for 50 brokers a fan-out cost about 9 ms of CPU per broker, with one pool each 5 ms
    (``bench/fanout``). When the environment names a proxy, every call goes through the
    client's own pool, which httpx routes through it, as before.
    """
    tls = httpx.create_ssl_context()  # one for all: loading the CA bundle takes ~50 ms
    if urllib.request.getproxies():
        return httpx.AsyncClient(verify=tls, limits=limits)
    origins = {str(httpx.URL(url).copy_with(path="/", query=None)).rstrip("/") for url in brokers}
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        origin: httpx.AsyncHTTPTransport(verify=tls, limits=limits) for origin in sorted(origins)
    }
    return httpx.AsyncClient(verify=tls, limits=limits, mounts=mounts)


def broker_posts(per_broker: int) -> aiohttp.ClientSession:
    """The client of the calls the service makes to many brokers at once: the offer requests
    of a fan-out and the phase changes of a selection (:func:`ask_offers`,
    :func:`update_phase`). A session, so inside a running event loop; close it after use.

    aiohttp, not httpx, for these: its HTTP parser is in C, and a call costs ~0.23 ms of CPU
    against ~1.2 ms through httpx and httpcore (``bench/fanout``), which at 50 brokers was most
    of the fan-out's own time. Proxies named by the environment are used, as httpx would; only
    then does aiohttp look at the environment, which it does for every request in a thread of
    its own (and reads ``~/.netrc`` in another), holding each request back 5-20 ms at 50.
    """
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=per_broker, ssl=ssl.create_default_context()
    )
    return aiohttp.ClientSession(connector=connector, trust_env=bool(urllib.request.getproxies()))


def _describe(exc: httpx.HTTPError | aiohttp.ClientError | TimeoutError) -> str:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"no answer in time ({type(exc).__name__})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def read_json(response: httpx.Response, limit: int) -> Any:
    """The JSON body of a streamed response, reading at most ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise BrokerAnswerInvalid(f"the answer is larger than {limit} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError as exc:
        raise BrokerAnswerInvalid(f"the answer is not JSON ({exc})") from None


def _refused(status: int, body: Any) -> BrokerRefused:
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title") or body.get("message")
        reason = body.get("reason")
        return BrokerRefused(
            status, str(detail or "error"), str(reason) if isinstance(reason, str) else None
        )
    return BrokerRefused(status, "error")


async def _call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limit: int,
    ok: tuple[int, ...],
    **kwargs: Any,
) -> Any:
    try:
        async with client.stream(method, url, follow_redirects=False, **kwargs) as response:
            try:
                body = await read_json(response, limit)
            except BrokerAnswerInvalid:
                if response.status_code in ok:
                    raise
                body = None
    except httpx.HTTPError as exc:
        raise BrokerUnreachable(_describe(exc)) from None
    if response.status_code not in ok:
        raise _refused(response.status_code, body)
    return body


async def _post(
    posts: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    within: float,
    limit: int,
    ok: tuple[int, ...],
) -> Any:
    """POST ``body`` (JSON) to ``url``: the JSON answer (at most ``limit`` bytes)."""
    try:
        async with posts.post(
            url,
            data=body,
            headers=JSON_HEADERS | headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > limit:
                    if response.status not in ok:
                        break
                    raise BrokerAnswerInvalid(f"the answer is larger than {limit} bytes")
                chunks.append(chunk)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BrokerUnreachable(_describe(exc)) from None
    try:
        answer = json.loads(b"".join(chunks)) if size <= limit else None
    except ValueError as exc:
        if status in ok:
            raise BrokerAnswerInvalid(f"the answer is not JSON ({exc})") from None
        answer = None
    if status not in ok:
        raise _refused(status, answer)
    return answer


async def ask_offers(
    posts: aiohttp.ClientSession,
    broker: str,
    request: bytes,
    headers: dict[str, str],
    *,
    within: float,
    limit: int,
) -> OfferSet:
    """``POST {broker}/requests``: the offer set (the broker answers 303 with it in the body)."""
    body = await _post(
        posts,
        f"{broker}/requests",
        request,
        headers,
        within=within,
        limit=limit,
        ok=(200, 201, 303),
    )
    if not isinstance(body, dict):
        raise BrokerAnswerInvalid("the offer set is not a JSON object")
    try:
        return OfferSet.model_validate(normalize_session(body))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BrokerAnswerInvalid(f"the offer set is not valid: {where}: {first['msg']}") from None


async def update_phase(
    posts: aiohttp.ClientSession,
    broker: str,
    uuid: str,
    phase: str,
    headers: dict[str, str],
    *,
    within: float,
    limit: int,
) -> dict[str, Any]:
    """``POST {broker}/sessions/{uuid}`` setting ``phase``: the session document after it."""
    change = {"kind": "uri:enum-value-update", "path": "phase", "value": phase}
    body = await _post(
        posts,
        f"{broker}/sessions/{uuid}",
        json.dumps(change).encode(),
        headers,
        within=within,
        limit=limit,
        ok=(200,),
    )
    return _session(body)


async def read_session(
    client: httpx.AsyncClient,
    broker: str,
    uuid: str,
    headers: dict[str, str],
    *,
    wait: float | None,
    within: float,
    limit: int,
) -> dict[str, Any]:
    """``GET {broker}/sessions/{uuid}[?wait=N]``: the session document."""
    params = {"wait": f"{wait:g}"} if wait else {}
    body = await _call(
        client,
        "GET",
        f"{broker}/sessions/{uuid}",
        limit=limit,
        ok=(200,),
        params=params,
        headers={"Accept": "application/json"} | headers,
        timeout=within + (wait or 0),
    )
    return _session(body)


def _session(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("phase"), str):
        raise BrokerAnswerInvalid("the session document has no phase")
    return body


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event: its type, data and id (None when it carried none)."""

    event: str
    data: str
    id: str | None


async def session_events(
    client: httpx.AsyncClient,
    broker: str,
    uuid: str,
    headers: dict[str, str],
    *,
    after: int | None,
    within: float,
    idle: float,
    limit: int,
) -> AsyncIterator[SseEvent]:
    """Follow ``GET {broker}/sessions/{uuid}/events`` from after event ``after``.

    Ends when the broker ends the stream; a stream silent for ``idle`` seconds (the broker
    sends keep-alive pings) or cut off is :class:`BrokerUnreachable`.
    """
    params = {"after": str(after)} if after is not None else {}
    try:
        async with client.stream(
            "GET",
            f"{broker}/sessions/{uuid}/events",
            params=params,
            headers={"Accept": "text/event-stream"} | headers,
            timeout=httpx.Timeout(within, read=idle),
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                try:
                    body = await read_json(response, limit)
                except BrokerAnswerInvalid:
                    body = None
                raise _refused(response.status_code, body)
            async for event in _parse(response.aiter_lines(), limit):
                yield event
    except httpx.HTTPError as exc:
        raise BrokerUnreachable(_describe(exc)) from None


async def _parse(lines: AsyncIterator[str], limit: int) -> AsyncIterator[SseEvent]:
    """The events of an event stream (https://html.spec.whatwg.org/#event-stream-interpretation)."""
    kind, ident, size = "message", None, 0
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SseEvent(kind, "\n".join(data), ident)
            kind, ident, data, size = "message", None, [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        size += len(value)
        if size > limit:
            raise BrokerAnswerInvalid(f"an event is larger than {limit} bytes")
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value or "message"
        elif name == "id" and "\0" not in value:
            ident = value
