"""Creating worksteps from the user's history (their worksteps, an execution, a broker's
session) and from provenance records, over real HTTP; a real broker answers for sessions."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from editor_support import Documents, Editor, user

from worksteps.broker.api.app import create_app as create_broker
from worksteps.broker.settings import BrokerSettings
from worksteps.core.serving import start_in_thread
from worksteps.schema import ExecutionRequest, kinds
from worksteps.schema.provenance import WorkstepRef, build_provenance


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A booking-only broker: its offers are real IVOA ExecutionSession documents."""
    path = tmp_path_factory.mktemp("broker") / "broker.sqlite"
    settings = BrokerSettings(site="site-h", database_url=f"sqlite:///{path}")
    served = start_in_thread(create_broker(settings))
    yield served.url
    served.stop()


def _created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _errors(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    return {e["field"]: e["reason"] for e in answer.json()["errors"]}


def _template(client: httpx.Client, name: str = "python-script") -> dict[str, Any]:
    return _created(client.post("/worksteps/from-template", json={"template": name}))


CONTENT = ("name", "description", "executable", "compute", "storage", "data", "schedule")


def test_from_my_own_workstep_and_one_of_its_versions(editor: Editor) -> None:
    with editor.client(user()) as client:
        earlier = _template(client)
        url = earlier["links"]["self"]
        client.post(f"{url}/data", json={"version": 1, "references": ["demo:psf-0004.fits"]})
        latest = client.get(url).json()
        clone = _created(client.post("/worksteps/from-history", json={"url": url}))
        assert clone["uuid"] != earlier["uuid"] and clone["version"] == 1
        assert {k: clone[k] for k in CONTENT} == {k: latest[k] for k in CONTENT}
        assert clone["origin"] == {
            "mode": "history",
            "source": url,
            "detail": {"kind": "workstep", "workstep": {"uuid": earlier["uuid"], "version": 2}},
        }
        first = _created(
            client.post("/worksteps/from-history", json={"url": f"{url}/versions/1", "name": "v1"})
        )
        assert first["data"] == [] and first["name"] == "v1"
        assert first["executable"] == earlier["executable"]


def test_not_from_another_users_workstep(editor: Editor) -> None:
    with editor.client(user()) as alice, editor.client(user()) as bob:
        url = _template(alice)["links"]["self"]
        errors = _errors(bob.post("/worksteps/from-history", json={"url": url}))
        assert errors == {"url": "no such workstep of yours"}
        assert bob.get("/worksteps").json() == {"worksteps": []}
        missing = _errors(alice.post("/worksteps/from-history", json={"url": f"{url}/versions/9"}))
        assert missing == {"url": "no such workstep of yours"}


def test_from_a_brokers_session(editor: Editor, broker: str) -> None:
    with editor.client(user()) as client:
        earlier = _template(client)
        request = client.get(earlier["links"]["request"]).json()
        offers = httpx.post(
            f"{broker}/requests", json=request, headers={"Accept": "application/json"}
        )
        assert offers.status_code == 303, offers.text
        offer = offers.json()["offers"][0]
        session_url = f"{broker}/sessions/{offer['meta']['uuid']}"
        clone = _created(client.post("/worksteps/from-history", json={"url": session_url}))
        assert clone["origin"]["detail"]["kind"] == "session"
        assert clone["origin"]["detail"]["session"] == offer["meta"]["uuid"]
        assert clone["executable"]["image"] == earlier["executable"]["image"]
        assert clone["executable"]["command"] == earlier["executable"]["command"]
        offered = offer["compute"]["cores"]
        assert clone["compute"]["cores"] == offered  # what the site offered, not the range
        assert "uuid" not in clone["executable"].get("meta", {})
        assert "phase" not in clone["executable"]
        assert [s["meta"]["name"] for s in clone["storage"]] == ["results"]


def test_from_an_execution_document(editor: Editor, documents: Documents) -> None:
    subject = user()
    with editor.client(subject) as client:
        earlier = _template(client, "carta")
        request = client.get(earlier["links"]["request"]).json()
        execution = {
            "id": "e-0001",
            "request": request,
            "workstep": {"uuid": earlier["uuid"], "version": 1, "name": earlier["name"]},
            "phase": "COMPLETED",
        }
        url = documents.put("/executions/e-0001", json.dumps(execution))
        clone = _created(client.post("/worksteps/from-history", json={"url": url}))
        assert ExecutionRequest.model_validate(
            client.get(clone["links"]["request"]).json()
        ) == ExecutionRequest.model_validate(request)
        assert clone["origin"]["detail"]["workstep"]["uuid"] == earlier["uuid"]
        # the execution service is trusted: it was sent the caller's token
        scheme, _, token = documents.seen["/executions/e-0001"][-1]["authorization"].partition(" ")
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert (scheme, claims["sub"]) == ("Bearer", subject)

        other = url.replace(documents.url, documents.untrusted)
        _created(client.post("/worksteps/from-history", json={"url": other}))
        assert "authorization" not in documents.seen["/executions/e-0001"][-1]

        odd = documents.put("/executions/odd", json.dumps({"something": "else"}))
        assert (
            "not a workstep"
            in _errors(client.post("/worksteps/from-history", json={"url": odd}))["url"]
        )


START = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


def test_from_a_worksteps_provenance_record(editor: Editor, documents: Documents) -> None:
    with editor.client(user()) as client:
        earlier = _template(client, "python-script")
        url = earlier["links"]["self"]
        client.post(f"{url}/data", json={"version": 1, "references": ["demo:obs-0002.fits"]})
        latest = client.get(url).json()
        request = ExecutionRequest.model_validate(client.get(f"{url}/request").json())
        record = build_provenance(
            session="http://127.0.0.1:1/executions/e-7",
            request=request,
            site="site-b",
            broker="http://127.0.0.1:2",
            phase="COMPLETED",
            started=START,
            ended=START + timedelta(minutes=5),
            outputs=["vos://example.org~cavern/home/u/result.fits"],
            workstep=WorkstepRef(uuid=latest["uuid"], version=2, name=latest["name"]),
            offer={"compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 8, "max": 8}}},
        )
        prov = documents.put("/provenance/e-7.json", json.dumps(record))
        again = _created(client.post("/worksteps/from-provenance", json={"url": prov}))
        assert {k: again[k] for k in CONTENT} == {k: latest[k] for k in CONTENT}
        assert again["origin"]["mode"] == "provenance"
        detail = again["origin"]["detail"]
        assert detail["site"] == "site-b" and detail["phase"] == "COMPLETED"
        assert detail["workstep"]["uuid"] == latest["uuid"]
        assert detail["outputs"] == ["vos://example.org~cavern/home/u/result.fits"]


FOREIGN: dict[str, Any] = {
    "prefix": {"ex": "http://example.org/"},
    "entity": {
        "ex:vis": {"prov:location": "demo:obs-0001.ms.tar"},
        "ex:img": {"prov:location": "https://example.org/img.fits"},
        "ex:note": {"prov:label": "no location at all"},
    },
    "activity": {"ex:imaging": {}, "ex:archiving": {}},
    "agent": {
        "ex:wsclean": {
            "prov:type": {"$": "prov:SoftwareAgent", "type": "prov:QUALIFIED_NAME"},
            "prov:location": "ghcr.io/example/wsclean:3.4",
        }
    },
    "used": {
        "_:u": {"prov:activity": "ex:imaging", "prov:entity": "ex:vis"},
        "_:n": {"prov:activity": "ex:imaging", "prov:entity": "ex:note"},
    },
    "wasGeneratedBy": {"_:g": {"prov:activity": "ex:imaging", "prov:entity": "ex:img"}},
    "wasAssociatedWith": {"_:a": {"prov:activity": "ex:imaging", "prov:agent": "ex:wsclean"}},
}


def test_from_another_producers_record(editor: Editor, documents: Documents) -> None:
    url = documents.put("/prov/foreign.json", json.dumps(FOREIGN))
    with editor.client(user()) as client:
        errors = _errors(client.post("/worksteps/from-provenance", json={"url": url}))
        assert "2 activities" in errors["url"]
        body = _created(
            client.post("/worksteps/from-provenance", json={"url": f"{url}#ex:imaging"})
        )
        assert body["executable"]["image"]["locations"] == ["ghcr.io/example/wsclean:3.4"]
        rucio, named = body["data"]
        assert rucio["rucio"] == {"scope": "demo", "object": "obs-0001.ms.tar"}
        assert named["location"] == "http://example.org/note"  # identified only by its IRI
        assert body["origin"]["detail"]["activity"] == "ex:imaging"
        nothing = _errors(
            client.post("/worksteps/from-provenance", json={"url": f"{url}#ex:archiving"})
        )
        assert "neither software nor data" in nothing["url"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"entity": {}}', "names no activity"),
        ("[1, 2]", "JSON object"),
        ("{not json", "cannot be read"),
    ],
)
def test_what_is_not_a_provenance_record(
    editor: Editor, documents: Documents, body: str, reason: str
) -> None:
    url = documents.put(f"/prov/bad-{uuid4().hex}.json", body)
    with editor.client(user()) as client:
        assert (
            reason in _errors(client.post("/worksteps/from-provenance", json={"url": url}))["url"]
        )


def test_a_provenance_record_from_an_allowed_file(editor: Editor, tmp_path: Path) -> None:
    record = build_provenance(
        session="e-9",
        request=ExecutionRequest.model_validate(
            {"executable": {"kind": kinds.EXEC_JUPYTER, "location": "https://example.org/a.ipynb"}}
        ),
        site="site-a",
        broker="http://b",
        phase="COMPLETED",
    )
    allowed = editor.files / "e-9.json"
    allowed.write_text(json.dumps(record))
    elsewhere = tmp_path / "e-9.json"
    elsewhere.write_text(json.dumps(record))
    with editor.client(user()) as client:
        body = _created(client.post("/worksteps/from-provenance", json={"url": allowed.as_uri()}))
        assert body["executable"]["location"] == "https://example.org/a.ipynb"
        errors = _errors(
            client.post("/worksteps/from-provenance", json={"url": elsewhere.as_uri()})
        )
        assert errors == {"url": "file:// URLs must lie under an allowed directory"}
