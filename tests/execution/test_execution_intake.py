"""Executing a workstep of the Workstep Editor by its URL: the request is fetched with the
caller's token, from known editors only; unreachable, malformed or hostile answers are a
clear 422 and nothing is sent to any broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from execution_support import (
    Broker,
    BrokerDatabase,
    Execution,
    ServeExecution,
    notebook,
    site_entry,
    start_broker,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from worksteps.core.serving import ServedApp, serve_in_thread


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Nothing here is about the store: SQLite only."""
    return f"sqlite:///{tmp_path}/execution.sqlite"


class Editor:
    """A stand-in Workstep Editor serving ``/worksteps/{name}/request`` in many ways."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization)

    def app(self) -> Starlette:
        async def request(req: Request) -> Response:
            name = req.path_params["name"]
            self.seen.append((req.url.path, req.headers.get("authorization")))
            if name == "good":
                return JSONResponse(notebook(2, 4))
            if name == "redirect":
                return RedirectResponse("file:///etc/passwd", status_code=302)
            if name == "missing":
                return JSONResponse({"detail": "no such workstep"}, status_code=404)
            if name == "html":
                return PlainTextResponse("<html>not json</html>")
            if name == "invalid":
                return JSONResponse({"executable": {"kind": "urn:nonsense"}})
            if name == "array":
                return JSONResponse([notebook()])
            if name == "huge":
                return JSONResponse(notebook() | {"meta": {"description": "x" * 9000}})
            await asyncio.sleep(1)  # "slow"
            return JSONResponse(notebook())

        return Starlette(routes=[Route("/worksteps/{name}/request", request)])


@pytest.fixture
def editor() -> Iterator[tuple[Editor, ServedApp]]:
    stand_in = Editor()
    with serve_in_thread(stand_in.app()) as served:
        yield stand_in, served


@pytest.fixture
def broker(broker_database: BrokerDatabase) -> Iterator[Broker]:
    running = start_broker("site-a", broker_database("site-a"), 8, 32)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def service(
    broker: Broker, serve_execution: ServeExecution, editor: tuple[Editor, ServedApp]
) -> Execution:
    return serve_execution(
        [site_entry("site-a", broker.url)],
        editor_urls=[editor[1].url + "/worksteps"],
        fetch_timeout=0.3,
        max_body_bytes=4096,
    )


def test_a_workstep_url_is_fetched_with_the_callers_token_and_executed(
    service: Execution, editor: tuple[Editor, ServedApp], broker: Broker, oidc: Any
) -> None:
    stand_in, served = editor
    headers = oidc.headers("alice")
    url = f"{served.url}/worksteps/good"
    with service.client(headers) as client:
        answer = client.post("/executions", json={"workstep_url": url, "deadline": 5})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["workstep"] == {"url": url}
    assert body["request"]["compute"]["cores"] == {"min": 2, "max": 2}
    assert {o["site"] for o in body["offers"]} == {"site-a"}
    assert stand_in.seen == [("/worksteps/good/request", headers["Authorization"])]


BAD_ANSWERS = [
    ("redirect", "workstep-unavailable", "HTTP 302"),
    ("missing", "workstep-unavailable", "HTTP 404"),
    ("html", "workstep-unavailable", "not JSON"),
    ("huge", "workstep-unavailable", "larger than 4096 bytes"),
    ("slow", "workstep-unavailable", "Timeout"),
    ("invalid", "invalid-input", "workstep_url.executable"),
    ("array", "invalid-input", "must be a JSON object"),
]


def test_a_bad_workstep_answer_is_a_clear_422_and_nothing_is_sent(
    service: Execution, editor: tuple[Editor, ServedApp], broker: Broker, oidc: Any
) -> None:
    with service.client(oidc.headers("alice")) as client:
        for name, reason, words in BAD_ANSWERS:
            answer = client.post(
                "/executions", json={"workstep_url": f"{editor[1].url}/worksteps/{name}"}
            )
            assert answer.status_code == 422, (name, answer.text)
            problem = answer.json()
            assert problem["reason"] == reason, (name, problem)
            assert words in problem["detail"], (name, problem)
            assert problem["errors"][0]["field"].startswith("workstep_url")
        assert client.get("/executions").json()["executions"] == []
    assert broker.requests_received() == 0
    assert len(editor[0].seen) == len(BAD_ANSWERS)


def test_the_token_never_goes_to_an_unknown_host(
    service: Execution, broker: Broker, oidc: Any
) -> None:
    stranger = Editor()
    with serve_in_thread(stranger.app()) as served, service.client(oidc.headers("alice")) as c:
        for url in (
            f"{served.url}/worksteps/good",
            "file:///etc/passwd",
            "http://",
            "not a url at all",
        ):
            answer = c.post("/executions", json={"workstep_url": url})
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["errors"][0]["field"] == "workstep_url"
    assert stranger.seen == []
    assert broker.requests_received() == 0
