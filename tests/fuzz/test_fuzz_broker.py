"""schemathesis against an Execution Broker on its own (booking only, checking tokens): its
IVOA ExecutionBroker API, with the request bodies described as the ExecutionRequest the spec
defines."""

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
EVENTS = "GET /sessions/{uuid}/events"
# Reported to the broker's owner, not fixed here: its document says the event stream is
# application/json. test_the_broker_documents_its_event_stream turns red when it is fixed.
KNOWN = {EVENTS: "text/event-stream"}


def _unknown(failures: list[str]) -> list[str]:
    """The failures but those that are only a known gap."""

    def known(failure: str) -> bool:
        alone = "found 1 distinct failure" in failure
        return alone and any(
            failure.startswith(f"{label} [") and mark in failure for label, mark in KNOWN.items()
        )

    return [f for f in failures if not known(f)]


@pytest.fixture(scope="module")
def api(broker: str) -> BaseSchema:
    return load(broker, ("/requests", None), ("/direct", None))


@pytest.fixture(scope="module")
def token(federation: Federation) -> str:
    return federation.issuer.mint("fuzzer")


def _signed_in(token: str) -> Callable[[Operation], dict[str, str]]:
    return lambda operation: {"Authorization": f"Bearer {token}"}


def test_fuzz_the_broker(api: BaseSchema, token: str) -> None:
    failures = _unknown(Fuzz(api, EXAMPLES, _signed_in(token)).run())
    assert not failures, "\n\n".join(failures)


@pytest.mark.xfail(strict=True, reason="the broker documents its event stream as JSON")
def test_the_broker_documents_its_event_stream(broker: str) -> None:
    document = httpx.get(f"{broker}/openapi.json").json()
    answer = document["paths"]["/sessions/{uuid}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in answer["content"]


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
    failures = _unknown(Fuzz(api, EXAMPLES, _signed_in(token)).run(objects))
    assert not failures, "\n\n".join(failures)
