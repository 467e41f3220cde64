"""A broker served on loopback for tests, and a client that speaks to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from worksteps.broker.api.app import create_app
from worksteps.broker.settings import BrokerSettings
from worksteps.core.serving import ServedApp, start_in_thread

JSON = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass
class RunningBroker:
    settings: BrokerSettings
    served: ServedApp
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.served.url

    def request(self, doc: dict[str, Any]) -> httpx.Response:
        return self.client.post("/requests", json=doc, headers=JSON)

    def offers(self, doc: dict[str, Any]) -> dict[str, Any]:
        response = self.request(doc)
        assert response.status_code == 303, response.text
        body: dict[str, Any] = response.json()
        return body

    def update(self, uuid: str, phase: str) -> httpx.Response:
        change = {"kind": "uri:enum-value-update", "path": "phase", "value": phase}
        return self.client.post(f"/sessions/{uuid}", json=change, headers=JSON)

    def session(self, uuid: str) -> dict[str, Any]:
        response = self.client.get(f"/sessions/{uuid}", headers=JSON)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def start_broker(settings: BrokerSettings) -> RunningBroker:
    served = start_in_thread(create_app(settings))
    return RunningBroker(settings, served, httpx.Client(base_url=served.url, timeout=30))


def stop_broker(broker: RunningBroker) -> None:
    broker.client.close()
    broker.served.stop()


def notebook_request(
    cores: tuple[int, int] = (2, 4), memory: tuple[int, int] = (4, 8), **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "executable": {
            "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/jupyter-notebook.yaml",
            "meta": {"name": "nb"},
            "location": "https://example.org/notebook.ipynb",
        },
        "compute": {
            "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml",
            "cores": {"min": cores[0], "max": cores[1]},
            "memory": {"min": memory[0], "max": memory[1]},
        },
        "schedule": {"requested": {"duration": "PT1H"}},
    }
    doc.update(extra)
    return doc
