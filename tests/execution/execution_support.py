"""Loopback helpers for the execution service's tests: real brokers (booking only, or with
an emulated site) behind a call-counting fault injector, a broker that never answers, a
broker that is down, a proxy that breaks event streams, and the service itself.

Imported by tests/execution as ``execution_support`` (pytest's prepend import mode puts this
folder on ``sys.path``); the name is unique across tests/.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from worksteps.broker.api.app import create_app as create_broker_app
from worksteps.broker.settings import BrokerSettings
from worksteps.core.serving import ServedApp, free_port, start_in_thread
from worksteps.emulators.faults import FaultInjector, FaultRule
from worksteps.execution.api import create_app as create_execution_app
from worksteps.execution.settings import ExecutionSettings
from worksteps.schema import kinds

JSON = {"Content-Type": "application/json", "Accept": "application/json"}

# For tests about brokers and HTTP rather than the store: run on SQLite only, to stay fast.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

BrokerDatabase = Callable[[str], Path]  # the broker_database fixture: a fresh file per name


def site_entry(name: str, url: str, **extra: Any) -> dict[str, Any]:
    """One site of a sites file."""
    return {"name": name, "url": url, **extra}


@dataclass
class Broker:
    """A real broker on loopback; ``faults`` counts its calls and can slow it down."""

    name: str
    settings: BrokerSettings
    faults: FaultInjector
    served: ServedApp
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.served.url

    def session(self, uuid: str) -> dict[str, Any]:
        answer = self.client.get(f"/sessions/{uuid}", headers=JSON)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def phase(self, uuid: str) -> str:
        return str(self.session(uuid)["phase"])

    def offers(self, doc: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.post("/requests", json=doc, headers=JSON)
        assert answer.status_code == 303, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def requests_received(self) -> int:
        return self.faults.count("POST", r"^/requests$")

    def stop(self) -> None:
        self.client.close()
        self.served.stop()


def start_broker(
    name: str,
    database: Path,
    cores: int,
    memory: int,
    *,
    rules: list[FaultRule] | None = None,
    **settings: Any,
) -> Broker:
    broker_settings = BrokerSettings(
        site=name,
        database_url=f"sqlite:///{database}",
        capacity={"cores": cores, "memory": memory, "gpus": 0, "storage": 100},
        **settings,
    )
    faults = FaultInjector(create_broker_app(broker_settings), rules)
    served = start_in_thread(faults)
    return Broker(name, broker_settings, faults, served, httpx.Client(base_url=served.url))


@contextmanager
def hanging_port() -> Iterator[str]:
    """A URL whose server accepts connections and never answers (a listening socket that is
    never read): the kernel completes the handshake, the request waits forever."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def down_url() -> str:
    """A URL where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


class StreamBreaker:
    """A proxy in front of a broker that forwards everything, but breaks every event stream
    after ``cut_after`` events (the connection is dropped mid-stream)."""

    def __init__(self, target: str, cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.streams = 0  # event streams opened through the proxy
        self.authorizations: set[str | None] = set()  # the Authorization headers it saw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() != b"host"]
        self.authorizations.add({k.lower(): v for k, v in headers}.get("authorization"))
        url = self.target + scope["path"]
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode()
        async with httpx.AsyncClient(timeout=60) as client:
            request = client.build_request(scope["method"], url, headers=headers, content=body)
            response = await client.send(request, stream=True)
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [
                            (k.encode(), v.encode())
                            for k, v in response.headers.items()
                            if k.lower() not in ("content-length", "transfer-encoding")
                        ],
                    }
                )
                events = 0
                streaming = scope["path"].endswith("/events")
                if streaming:
                    self.streams += 1
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    events += chunk.count(b"data:") if streaming else 0
                    if streaming and events >= self.cut_after:
                        await asyncio.sleep(0.05)  # let the events reach the client first
                        raise ConnectionResetError("stream broken on purpose")
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                await response.aclose()


@dataclass
class Execution:
    """The execution service on loopback, and its settings."""

    settings: ExecutionSettings
    served: ServedApp

    @property
    def url(self) -> str:
        return self.served.url

    def client(self, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


ServeExecution = Callable[..., Execution]  # the serve_execution fixture


def write_sites(path: Path, sites: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"sites": sites}), encoding="utf-8")
    return path


def start_execution(settings: ExecutionSettings) -> Execution:
    return Execution(settings, start_in_thread(create_execution_app(settings)))


def notebook(cores: int = 2, memory: int = 4, duration: str = "PT1H") -> dict[str, Any]:
    """An ExecutionRequest for a notebook of exactly ``cores`` and ``memory``."""
    return {
        "executable": {
            "kind": kinds.EXEC_JUPYTER,
            "meta": {"name": "nb"},
            "location": "https://example.org/notebook.ipynb",
        },
        "compute": {
            "kind": kinds.COMPUTE_SIMPLE,
            "cores": {"min": cores, "max": cores},
            "memory": {"min": memory, "max": memory},
        },
        "schedule": {"requested": {"duration": duration}},
    }


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)


def sse_events(
    url: str, headers: dict[str, str], until: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> list[dict[str, Any]]:
    """Read a server-sent event stream until ``until(event)``: each event as
    ``{"event", "id", "data"}`` (data decoded from JSON)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=timeout) as client, client.stream("GET", url, headers=headers) as s:
        assert s.status_code == 200, s.read()
        for line in s.iter_lines():
            assert time.monotonic() < deadline, events
            if not line:
                if "data" in current:
                    current["data"] = json.loads(current["data"])
                    events.append(current)
                    if until(current):
                        return events
                current = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
    return events
