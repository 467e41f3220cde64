"""Another user's worksteps and executions do not exist for you: every operation of the
gateway's API that names one answers 404, exactly as for an identifier nobody has, changes
nothing, and the owner's identical request works."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from security_support import Operation, fill, operations, problem, wait_until_ended

from worksteps.client import ClientError, WorkstepsClient
from worksteps.federation import Federation


@dataclass
class Call:
    """One request of an operation, made for the owner's object."""

    values: dict[str, str]
    body: Any = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[], None] = lambda: None  # after the stranger's try: nothing changed
    owner_status: int | None = 200  # None: anything but 404
    cleanup: Callable[[], None] = lambda: None  # after the owner's request


Recipe = Callable[[WorkstepsClient], Call]


def _workstep(alice: WorkstepsClient, edits: Callable[[dict[str, Any]], Call]) -> Recipe:
    def make(_: WorkstepsClient) -> Call:
        made = alice.create("template", template="python-script", name="private")
        made = alice.add_data(made["uuid"], ["demo:psf-0004.fits"], made["version"])
        call = edits(made)
        unchanged = call.check

        def check() -> None:
            unchanged()
            now = alice.workstep(made["uuid"])
            assert now["version"] == made["version"] and now["name"] == "private", now

        call.check = check
        return call

    return make


def _recipes(alice: WorkstepsClient, ended: str) -> dict[str, Recipe]:
    """How to make a valid request of each operation that names an object of alice's."""

    def of(made: dict[str, Any], **kw: Any) -> Call:
        return Call({"uuid": made["uuid"], "version": str(made["version"])}, **kw)

    def versioned(part: str) -> Recipe:
        return _workstep(alice, lambda m: of(m, body={part: m[part], "version": m["version"]}))

    def offered() -> str:
        made = alice.create("template", template="python-script")
        execution = alice.execute(made["uuid"])
        assert execution["offers"], execution["brokers"]
        return str(execution["id"])

    def still_offered(execution: str) -> Callable[[], None]:
        def check() -> None:
            assert alice.execution(execution)["state"] == "offered"

        return check

    def select(_: WorkstepsClient) -> Call:
        execution = offered()
        offer = alice.execution(execution)["offers"][0]["offer"]

        def withdraw() -> None:  # the session need not run on
            alice.cancel(execution)

        return Call(
            {"execution": execution},
            {"offer": offer},
            check=still_offered(execution),
            cleanup=withdraw,
        )

    def cancel(_: WorkstepsClient) -> Call:
        execution = offered()
        return Call({"execution": execution}, check=still_offered(execution))

    return {
        "GET /api/worksteps/{uuid}": _workstep(alice, of),
        "PATCH /api/worksteps/{uuid}": _workstep(
            alice, lambda m: of(m, body={"name": "renamed", "version": m["version"]})
        ),
        "DELETE /api/worksteps/{uuid}": _workstep(
            alice, lambda m: of(m, headers={"If-Match": f'"{m["version"]}"'}, owner_status=204)
        ),
        "GET /api/worksteps/{uuid}/request": _workstep(alice, of),
        "GET /api/worksteps/{uuid}/versions": _workstep(alice, of),
        "GET /api/worksteps/{uuid}/versions/{version}": _workstep(alice, of),
        "PUT /api/worksteps/{uuid}/executable": versioned("executable"),
        "PUT /api/worksteps/{uuid}/compute": versioned("compute"),
        "PUT /api/worksteps/{uuid}/data": versioned("data"),
        "PUT /api/worksteps/{uuid}/storage": versioned("storage"),
        "POST /api/worksteps/{uuid}/data": _workstep(
            alice,
            lambda m: of(
                m, body={"references": ["demo:meerkat-img-0003.fits"], "version": m["version"]}
            ),
        ),
        "DELETE /api/worksteps/{uuid}/data/{name}": _workstep(
            alice,
            lambda m: Call(
                {"uuid": m["uuid"], "name": m["data"][0]["meta"]["name"]},
                params={"version": str(m["version"])},
            ),
        ),
        "GET /api/executions/{execution}": lambda _: Call({"execution": ended}),
        "POST /api/executions/{execution}/select": select,
        "POST /api/executions/{execution}/cancel": cancel,
        "GET /api/executions/{execution}/events": lambda _: Call({"execution": ended}),
        "GET /api/executions/{execution}/provenance": lambda _: Call({"execution": ended}),
    }


# objects that are not anyone's: the template catalogue and its files are the same for all
SHARED = {"GET /api/templates/{name}", "GET /api/template-files/{name}"}


@pytest.fixture
def ended(alice: WorkstepsClient) -> str:
    """An execution of alice's whose (headless) session ran and ended."""
    made = alice.create("template", template="python-script")
    execution = alice.execute(made["uuid"])
    best = min(execution["offers"], key=lambda o: o["rank"])
    alice.select(execution["id"], best["offer"])
    alice.cancel(execution["id"])  # ended at once, rather than after the job's few seconds
    wait_until_ended(alice, execution["id"])
    return str(execution["id"])


def _send(client: WorkstepsClient, op: Operation, call: Call, values: dict[str, str]) -> Any:
    http: httpx.Client = client._http  # the client's own session: its token, its gateway
    return http.request(
        op.method,
        fill(op.path, values).removeprefix("/api"),
        json=call.body,
        params=call.params,
        headers=call.headers,
        timeout=60,
    )


def test_another_users_objects_answer_404_for_every_operation(
    federation: Federation, alice: WorkstepsClient, bob: WorkstepsClient, ended: str
) -> None:
    recipes = _recipes(alice, ended)
    naming = [op for op in operations(federation.gateway) if op.parameters]
    unknown = {op.label for op in naming} - recipes.keys() - SHARED
    assert not unknown, f"operations without an ownership recipe: {sorted(unknown)}"
    for op in naming:
        if op.label in SHARED:
            continue
        call = recipes[op.label](alice)
        stolen = _send(bob, op, call, call.values)
        assert stolen.status_code == 404, f"{op.label}: {stolen.status_code} {stolen.text[:300]}"
        # the answer for alice's object is the answer for an object that does not exist
        absent = dict(call.values)
        for name in ("uuid", "execution"):
            if name in absent:
                absent[name] = str(uuid.uuid4())
        nobody = _send(bob, op, call, absent)
        assert nobody.status_code == 404, op.label
        assert _anonymous(stolen, call.values) == _anonymous(nobody, absent), op.label
        call.check()
        owned = _send(alice, op, call, call.values)
        call.cleanup()
        if call.owner_status is None:
            assert owned.status_code != 404, op.label
        else:
            assert owned.status_code == call.owner_status, f"{op.label}: {owned.text[:300]}"


def _anonymous(response: httpx.Response, values: dict[str, str]) -> dict[str, Any]:
    """The problem document with the identifiers the caller sent blanked out."""
    body = problem(response)
    text = json.dumps({k: body.get(k) for k in ("status", "reason", "detail", "errors")})
    for name in ("uuid", "execution"):
        if name in values:
            text = text.replace(values[name], "ID")
    answer: dict[str, Any] = json.loads(text)
    return answer


def test_lists_and_urls_do_not_reach_another_users_objects(
    federation: Federation, alice: WorkstepsClient, bob: WorkstepsClient, ended: str
) -> None:
    mine = alice.create("empty", name="alice's secret")
    assert all(w["uuid"] != mine["uuid"] for w in bob.worksteps())
    as_owner = bob._http.get("/worksteps", params={"owner": "alice"}).json()["worksteps"]
    assert all(w["owner"] == "bob" for w in as_owner)
    assert all(e["id"] != ended for e in bob.executions())
    base = f"{federation.gateway}/api"
    for mode, url in [
        ("history", f"{base}/worksteps/{mine['uuid']}"),
        ("history", f"{base}/executions/{ended}"),
        ("provenance", f"{base}/executions/{ended}/provenance"),
    ]:
        with pytest.raises(ClientError) as refused:
            bob.create(mode, url=url)
        assert refused.value.status == 422, (mode, url)
        assert "secret" not in str(refused.value.problem)
    assert all(w["name"] != "alice's secret" for w in bob.worksteps())
