"""The fan-out's calls to brokers (aiohttp) over real HTTP: what each kind of answer becomes.

A broker that answers with anything but the document asked for gives the caller one of the
package's errors, with words a user can read, never a third-party exception.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worksteps.core.serving import ServedApp, free_port, serve_in_thread
from worksteps.execution.brokers import (
    BrokerAnswerInvalid,
    BrokerRefused,
    BrokerUnreachable,
    ask_offers,
    broker_posts,
    update_phase,
)

LIMIT = 64 * 1024
OFFERSET = {
    "kind": "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/offerset/offerset-response-1.0",
    "meta": {"uuid": "0b0a8d41-5a55-4d6b-8e62-6f1c1fbc2b10"},
    "result": "NO",
    "offers": [],
}
seen: dict[str, object] = {}


async def requests(request: Request) -> Response:
    """``POST /requests``: the answer the ``Authorization`` header names."""
    seen["body"] = json.loads(await request.body())
    seen["content-type"] = request.headers.get("content-type")
    case = request.headers.get("authorization", "").removeprefix("Bearer ")
    if case == "offers":
        return JSONResponse(OFFERSET, status_code=303, headers={"Location": "/offersets/x"})
    if case == "huge":
        return JSONResponse({"padding": "x" * LIMIT}, status_code=303)
    if case == "html":
        return Response("<html>not an offer set</html>", status_code=303)
    if case == "invalid":
        return JSONResponse({"kind": OFFERSET["kind"], "result": "MAYBE"}, status_code=303)
    if case == "problem":
        problem = {"title": "Conflict", "detail": "the offer has expired", "reason": "expired"}
        return JSONResponse(problem, status_code=409)
    if case == "huge-error":
        return Response("<html>" + "x" * 2 * LIMIT + "</html>", status_code=502)
    if case == "slow":
        await asyncio.sleep(2)
    return JSONResponse({"detail": f"unexpected case {case!r}"}, status_code=400)


async def session(request: Request) -> Response:
    seen["change"] = json.loads(await request.body())
    return JSONResponse({"phase": seen["change"]["value"]})  # type: ignore[index]


@pytest.fixture(scope="module")
def broker() -> Iterator[ServedApp]:
    app = Starlette(
        routes=[
            Route("/requests", requests, methods=["POST"]),
            Route("/sessions/{uuid}", session, methods=["POST"]),
        ]
    )
    with serve_in_thread(app) as served:
        yield served


async def ask(url: str, case: str, within: float = 5.0) -> object:
    async with broker_posts(per_broker=4) as posts:
        headers = {"Authorization": f"Bearer {case}"}
        return await ask_offers(posts, url, b'{"asked": 1}', headers, within=within, limit=LIMIT)


async def test_an_offer_set_is_read_and_the_request_sent_as_json(broker: ServedApp) -> None:
    offerset = await ask(broker.url, "offers")
    assert offerset.result == "NO"  # type: ignore[attr-defined]
    assert seen["body"] == {"asked": 1}
    assert seen["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("case", "error", "words"),
    [
        ("huge", BrokerAnswerInvalid, f"larger than {LIMIT} bytes"),
        ("html", BrokerAnswerInvalid, "not JSON"),
        ("invalid", BrokerAnswerInvalid, "not valid: result"),
        ("problem", BrokerRefused, "HTTP 409: the offer has expired"),
        ("huge-error", BrokerRefused, "HTTP 502: error"),
    ],
)
async def test_a_wrong_answer_is_a_readable_error(
    broker: ServedApp, case: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as caught:
        await ask(broker.url, case)
    assert words in str(caught.value)
    if case == "problem":
        assert isinstance(caught.value, BrokerRefused)
        assert (caught.value.status, caught.value.reason) == (409, "expired")


async def test_no_answer_in_time_and_no_broker_are_unreachable(broker: ServedApp) -> None:
    with pytest.raises(BrokerUnreachable, match="no answer in time"):
        await ask(broker.url, "slow", within=0.3)
    with pytest.raises(BrokerUnreachable, match="Connect"):
        await ask(f"http://127.0.0.1:{free_port()}", "offers")


async def test_a_phase_change_is_posted_and_the_session_returned(broker: ServedApp) -> None:
    async with broker_posts(per_broker=4) as posts:
        doc = await update_phase(posts, broker.url, "abc", "REJECTED", {}, within=5, limit=LIMIT)
    assert doc == {"phase": "REJECTED"}
    assert seen["change"] == {"kind": "uri:enum-value-update", "path": "phase", "value": "REJECTED"}
