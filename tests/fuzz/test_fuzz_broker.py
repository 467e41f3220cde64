"""schemathesis against an Execution Broker on its own (booking only, checking tokens): its
IVOA ExecutionBroker API as its own document describes it (request bodies, the event stream,
problem documents)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fuzz_support import Fuzz, Operation, load, operations
from schemathesis.schemas import BaseSchema

from worksteps.client import WorkstepsClient
from worksteps.federation import Federation

EXAMPLES = 15
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def api(broker: str) -> BaseSchema:
    return load(broker)


@pytest.fixture(scope="module")
def token(federation: Federation) -> str:
    return federation.issuer.mint("fuzzer")


def _signed_in(token: str) -> Callable[[Operation], dict[str, str]]:
    return lambda operation: {"Authorization": f"Bearer {token}"}


def test_fuzz_the_broker(api: BaseSchema, token: str) -> None:
    failures = Fuzz(api, EXAMPLES, _signed_in(token)).run()
    assert not failures, "\n\n".join(failures)


def test_the_broker_documents_its_event_stream(broker: str) -> None:
    document = httpx.get(f"{broker}/openapi.json").json()
    answer = document["paths"]["/sessions/{uuid}/events"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/event-stream"]


def test_the_broker_documents_its_bodies_and_problems(broker: str) -> None:
    document = httpx.get(f"{broker}/openapi.json").json()
    bodies = {
        ("/requests", "ExecutionRequest"),
        ("/direct", "ExecutionRequest"),
        ("/sessions/{uuid}", "Update"),
    }
    for path, model in bodies:
        content = document["paths"][path]["post"]["requestBody"]["content"]
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
    schemas = document["components"]["schemas"]
    assert {"ExecutionRequest", "Update", "Problem"} <= schemas.keys()
    assert "HTTPValidationError" not in schemas
    for item in document["paths"].values():
        for operation in item.values():
            problem = operation["responses"]["4XX"]["content"]
            assert problem == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }


@pytest.fixture(scope="module")
def request_document(federation: Federation) -> dict[str, Any]:
    """A complete ExecutionRequest (executable, compute with a volume, storage, data), as the
    editor makes it from the headless template."""
    with WorkstepsClient(federation.gateway, federation.issuer.mint("fuzzer")) as user:
        made = user.create("template", template="python-script")
        user.add_data(made["uuid"], ["demo:psf-0004.fits"], made["version"])
        return user.request_of(made["uuid"])


def _objects(
    broker: str, request: dict[str, Any], token: str
) -> dict[str, Callable[[], dict[str, Any]]]:
    """For each operation naming something: a fresh one of the fuzzing user's."""
    headers = JSON | {"Authorization": f"Bearer {token}"}

    def offer_set() -> dict[str, Any]:
        answer = httpx.post(
            f"{broker}/requests", json=request, headers=headers, follow_redirects=True
        )
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        assert document["result"] == "YES", document
        return document

    def offered() -> dict[str, Any]:
        return {"uuid": offer_set()["offers"][0]["meta"]["uuid"]}

    def rejected() -> dict[str, Any]:  # final: its event stream and long-poll end at once
        uuid = offered()["uuid"]
        update = {"kind": "uri:enum-value-update", "path": "phase", "value": "REJECTED"}
        assert httpx.post(f"{broker}/sessions/{uuid}", json=update, headers=headers).is_success
        return {"uuid": uuid}

    def component(part: str) -> Callable[[], dict[str, Any]]:
        def make() -> dict[str, Any]:
            offer = offer_set()["offers"][0]
            found = {
                "executables": offer.get("executable"),
                "compute": offer.get("compute"),
                "storage": (offer.get("storage") or [None])[0],
                "data": (offer.get("data") or [None])[0],
                "volumes": ((offer.get("compute") or {}).get("volumes") or [None])[0],
            }[part]
            assert found is not None, f"the offer has no {part}: {offer}"
            return {"uuid": found["meta"]["uuid"]}

        return make

    objects = {
        "GET /offersets/{uuid}": lambda: {"uuid": offer_set()["meta"]["uuid"]},
        "GET /sessions/{uuid}": rejected,
        "POST /sessions/{uuid}": offered,
        "GET /sessions/{uuid}/events": rejected,
    }
    for part in ("executables", "compute", "storage", "data", "volumes"):
        objects[f"GET /{part}/{{uuid}}"] = component(part)
    return objects


def test_fuzz_the_broker_on_its_own_objects(
    api: BaseSchema, broker: str, request_document: dict[str, Any], token: str
) -> None:
    objects = _objects(broker, request_document, token)
    labels = {operation.label for operation in operations(api)}
    assert objects.keys() <= labels, objects.keys() - labels
    failures = Fuzz(api, EXAMPLES, _signed_in(token)).run(objects)
    assert not failures, "\n\n".join(failures)
