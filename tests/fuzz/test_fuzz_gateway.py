"""schemathesis against the Science Gateway's user API (``/api``, the editor and the
execution service inside it), signed in: no 5xx, and every answer as the document says."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from fuzz_support import Fuzz, Operation, load, operations
from schemathesis.schemas import BaseSchema

from worksteps.client import WorkstepsClient
from worksteps.federation import Federation

EXAMPLES = 20
OFFER_REQUESTS = "POST /api/executions"


@pytest.fixture(scope="module")
def api(federation: Federation) -> BaseSchema:
    """The gateway's document, its ``/api`` part, the ``request`` of an offer request
    described as the IVOA ExecutionRequest it is."""
    return load(federation.gateway, ("/api/executions", "request"), path_regex="^/api/")


def signed_in(federation: Federation) -> Callable[[Operation], dict[str, str]]:
    """The fuzzing user's token; a new user for each offer request, which is rate-limited."""
    token = federation.issuer.mint("fuzzer")
    strangers = itertools.count()

    def headers(operation: Operation) -> dict[str, str]:
        subject = f"fuzzer-{next(strangers)}" if operation.label == OFFER_REQUESTS else None
        return {"Authorization": f"Bearer {federation.issuer.mint(subject) if subject else token}"}

    return headers


def test_fuzz_the_gateway_api(api: BaseSchema, federation: Federation) -> None:
    fuzz = Fuzz(api, EXAMPLES, signed_in(federation))
    failures = fuzz.run()
    assert not failures, "\n\n".join(failures)
    assert fuzz.calls > 5 * len(operations(api))


def _own_objects(api: BaseSchema, fuzzer: WorkstepsClient) -> dict[str, Callable[[], Any]]:
    """For each operation that names a workstep or an execution: a fresh one of the fuzzing
    user's (an offered execution to select or cancel; an ended one to read)."""

    def workstep() -> dict[str, Any]:
        made = fuzzer.create("template", template="python-script")
        made = fuzzer.add_data(made["uuid"], ["demo:psf-0004.fits"], made["version"])
        return {"uuid": made["uuid"], "name": made["data"][0]["meta"]["name"]}

    def offered() -> dict[str, Any]:
        made = fuzzer.create("template", template="python-script")
        return {"execution": fuzzer.execute(made["uuid"])["id"]}

    @cache
    def ended() -> dict[str, Any]:
        execution = offered()["execution"]
        fuzzer.select(execution, fuzzer.execution(execution)["offers"][0]["offer"])
        fuzzer.cancel(execution)
        return {"execution": execution}

    objects: dict[str, Callable[[], Any]] = {}
    for operation in operations(api):
        label = operation.label
        if "{uuid}" in label:
            objects[label] = workstep
        elif label.endswith(("/select", "/cancel")):
            objects[label] = offered
        elif "{execution}" in label:
            objects[label] = ended
    return objects


def test_fuzz_the_gateway_api_on_own_objects(api: BaseSchema, federation: Federation) -> None:
    """The same on the user's own worksteps and executions, so that edits, versions,
    selection, events and provenance get past "not found"."""
    with WorkstepsClient(federation.gateway, federation.issuer.mint("fuzzer")) as fuzzer:
        objects = _own_objects(api, fuzzer)
        assert len(objects) >= 15
        failures = Fuzz(api, EXAMPLES // 2, signed_in(federation)).run(objects)
    assert not failures, "\n\n".join(failures)
