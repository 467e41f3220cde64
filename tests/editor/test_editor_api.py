"""The editor over real HTTP on both engines: creating empty or from a request, editing with
field errors and versions, optimistic concurrency, ownership and deletion."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from editor_support import Editor, user

from worksteps.core.serving import start_in_thread
from worksteps.editor.api import create_app
from worksteps.schema import ExecutionRequest, kinds

DOCKER = {
    "kind": kinds.EXEC_DOCKER,
    "meta": {"name": "terminal"},
    "image": {"locations": ["images.example.org/skaha/terminal:1.1.2"]},
    "command": ["python3", "-c", "print('hello')"],
}


def _errors(answer: httpx.Response, status: int = 422) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["reason"] for e in answer.json()["errors"]}


def _create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = client.post("/worksteps", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def test_health_is_public_and_everything_else_needs_a_token(editor: Editor) -> None:
    assert httpx.get(f"{editor.url}/health").json() == {"status": "ok"}
    answer = httpx.get(f"{editor.url}/worksteps")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert httpx.post(f"{editor.url}/worksteps", json={}).status_code == 401


def test_an_empty_workstep(editor: Editor) -> None:
    with editor.client(user()) as client:
        answer = client.post("/worksteps", json={"name": "scratch"})
        assert answer.status_code == 201
        body = answer.json()
        assert answer.headers["etag"] == '"1"'
        assert answer.headers["location"] == body["links"]["self"]
        assert body["version"] == 1 and body["ready"] is False
        assert body["origin"] == {"mode": "empty"}
        assert (body["name"], body["executable"], body["data"], body["storage"]) == (
            "scratch",
            None,
            [],
            [],
        )
        again = client.get(f"/worksteps/{body['uuid']}")
        assert again.json() == body
        request = client.get(f"/worksteps/{body['uuid']}/request")
        assert request.json() == {"meta": {"name": "scratch"}}


LEGACY_REQUEST = {
    "name": "legacy",
    "executable": {
        "type": "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0",
        "image": {"locations": ["images.example.org/skaha/terminal:1.1.2"]},
    },
    "computer": {
        "type": "https://www.purl.org/ivoa.net/EB/schema/types/computer/simple-compute-resource-1.0",
        "cores": {"min": 2, "max": 4},
    },
    "schedule": {"requested": {"duration": "PT30M"}},
}


def test_a_request_is_held_as_it_is_with_current_kinds(editor: Editor) -> None:
    with editor.client(user()) as client:
        body = _create(client, request=LEGACY_REQUEST)
        assert body["origin"]["mode"] == "request"
        assert body["executable"]["kind"] == kinds.EXEC_DOCKER
        assert body["compute"]["kind"] == kinds.COMPUTE_SIMPLE
        sent = client.get(body["links"]["request"]).json()
        assert sent == {
            "meta": {"name": "legacy"},
            "executable": {
                "kind": kinds.EXEC_DOCKER,
                "image": {"locations": ["images.example.org/skaha/terminal:1.1.2"]},
            },
            "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 2, "max": 4}},
            "schedule": {"requested": {"duration": "PT30M"}},
        }
        ExecutionRequest.model_validate(sent)
        yaml = client.get(body["links"]["request"], headers={"Accept": "application/yaml"})
        assert yaml.headers["content-type"].startswith("application/yaml")
        assert "PT30M" in yaml.text
        xml = client.get(body["links"]["request"], headers={"Accept": "application/xml"})
        assert xml.text.lstrip().startswith("<")


def test_an_invalid_request_names_its_fields_and_creates_nothing(editor: Editor) -> None:
    bad = {
        "executable": {"kind": kinds.EXEC_DOCKER, "image": {"locations": ["Not An Image!"]}},
        "compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 8, "max": 2}},
    }
    with editor.client(user()) as client:
        errors = _errors(client.post("/worksteps", json={"request": bad}))
        assert "greater than max" in errors["request.compute.cores"]
        bad["compute"] = {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 2, "max": 4}}
        errors = _errors(client.post("/worksteps", json={"request": bad}))
        assert errors == {"request.executable.image.locations.0": "'Not An Image!' is not an image"}
        assert client.get("/worksteps").json() == {"worksteps": []}


def test_edits_make_versions_and_bad_ones_change_nothing(editor: Editor) -> None:
    with editor.client(user()) as client:
        first = _create(client, name="edited")
        url = first["links"]["self"]
        second = client.put(f"{url}/executable", json={"version": 1, "executable": DOCKER})
        assert second.status_code == 200, second.text
        assert second.headers["etag"] == '"2"'
        assert second.json()["ready"] is True

        refused = client.put(
            f"{url}/executable",
            headers={"If-Match": '"2"'},
            json={"executable": {**DOCKER, "privileged": True, "environment": {"1X": "y"}}},
        )
        assert _errors(refused) == {
            "executable.privileged": "privileged containers are not allowed",
            "executable.environment.1X": "not an environment name",
        }
        refused = client.put(
            f"{url}/compute",
            headers={"If-Match": '"2"'},
            json={"compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 0, "max": 5000}}},
        )
        assert _errors(refused) == {
            "compute.cores.min": "must be at least 1",
            "compute.cores.max": "at most 1024 may be asked for",
        }
        refused = client.put(
            f"{url}/compute", headers={"If-Match": '"2"'}, json={"compute": {"kind": "nonsense"}}
        )
        assert "compute" in _errors(refused)
        refused = client.put(
            f"{url}/data",
            headers={"If-Match": '"2"'},
            json={"data": [{"kind": kinds.DATA_RUCIO, "meta": {"name": "x"}, "rucio": {}}]},
        )
        assert _errors(refused) == {
            "data.0.rucio.scope": "a Rucio scope is needed",
            "data.0.rucio.object": "a Rucio name is needed",
        }
        refused = client.put(
            f"{url}/storage",
            headers={"If-Match": '"2"'},
            json={"storage": [{"kind": kinds.STORAGE_SIMPLE, "data": ["ghost"]}]},
        )
        assert _errors(refused) == {"storage.0.data.0": "names unknown data 'ghost'"}
        # none of that was stored
        assert client.get(url).json() == second.json()
        assert [v["version"] for v in client.get(f"{url}/versions").json()["versions"]] == [1, 2]

        third = client.put(
            f"{url}/compute",
            headers={"If-Match": 'W/"2"'},
            json={
                "compute": {
                    "kind": kinds.COMPUTE_SIMPLE,
                    "cores": {"min": 2, "max": 4},
                    "memory": {"min": 4, "max": 8, "units": "GiB"},
                }
            },
        ).json()
        fourth = client.post(
            f"{url}/data", json={"version": 3, "references": ["demo:psf-0004.fits"]}
        ).json()
        assert fourth["version"] == 4
        assert fourth["data"][0]["rucio"] == {"scope": "demo", "object": "psf-0004.fits"}
        assert fourth["compute"]["cores"] == third["compute"]["cores"]
        assert fourth["compute"]["volumes"][0]["resource"] == "psf-0004.fits"
        fifth = client.patch(
            url,
            headers={"If-Match": '"4"'},
            json={"name": "renamed", "schedule": {"requested": {"duration": "PT3H"}}},
        ).json()
        assert (fifth["name"], fifth["schedule"]) == (
            "renamed",
            {"requested": {"duration": "PT3H"}},
        )
        sixth = client.delete(f"{url}/data/psf-0004.fits", params={"version": 5}).json()
        assert sixth["data"] == [] and not sixth["compute"].get("volumes")
        assert "data" not in sixth["storage"][0]

        history = client.get(f"{url}/versions").json()["versions"]
        assert [(v["version"], v["change"]) for v in history] == [
            (1, "create:empty"),
            (2, "set-executable"),
            (3, "set-compute"),
            (4, "add-data"),
            (5, "set-details"),
            (6, "remove-data"),
        ]
        for entry in history:  # every version is still there, as it was
            old = client.get(entry["url"]).json()
            assert old["version"] == entry["version"]
        assert client.get(history[0]["url"]).json()["executable"] is None
        assert client.get(history[3]["url"]).json()["name"] == "edited"
        assert client.get(f"{url}/versions/7").status_code == 404


def test_a_stale_or_missing_version_is_refused(editor: Editor) -> None:
    with editor.client(user()) as client:
        url = _create(client)["links"]["self"]
        assert client.put(f"{url}/executable", json={"executable": DOCKER}).status_code == 428
        ok = client.put(f"{url}/executable", json={"version": 1, "executable": DOCKER})
        assert ok.status_code == 200
        stale = client.put(f"{url}/executable", json={"version": 1, "executable": None})
        assert stale.status_code == 409
        assert stale.json()["currentVersion"] == 2 and stale.json()["reason"] == "stale-version"
        mixed = client.put(
            f"{url}/executable",
            headers={"If-Match": '"2"'},
            json={"version": 1, "executable": None},
        )
        assert mixed.status_code == 400
        assert client.delete(url, headers={"If-Match": '"1"'}).status_code == 409
        assert client.get(url).json()["version"] == 2
        anyway = client.put(
            f"{url}/executable", headers={"If-Match": "*"}, json={"executable": None}
        )
        assert anyway.json()["version"] == 3


def test_another_users_workstep_does_not_exist_for_them(editor: Editor) -> None:
    alice, bob = user(), user()
    with editor.client(alice) as mine, editor.client(bob) as theirs:
        body = _create(mine, name="alice's")
        url = body["links"]["self"]
        for answer in (
            theirs.get(url),
            theirs.get(f"{url}/versions"),
            theirs.get(f"{url}/versions/1"),
            theirs.get(f"{url}/request"),
            theirs.put(f"{url}/executable", json={"version": 1, "executable": DOCKER}),
            theirs.delete(url),
        ):
            assert answer.status_code == 404, answer.text
            assert answer.json()["reason"] == "workstep-not-found"
        assert theirs.get("/worksteps").json() == {"worksteps": []}
        assert mine.get(url).json()["version"] == 1
        with editor.client("operator", roles=["admin"]) as admin:
            assert admin.get(url).json()["name"] == "alice's"
            listed = admin.get("/worksteps", params={"owner": alice}).json()["worksteps"]
            assert [w["uuid"] for w in listed] == [body["uuid"]]
        assert theirs.get("/worksteps/not-a-uuid").status_code == 404


def test_delete_removes_the_workstep_and_its_history(editor: Editor) -> None:
    with editor.client(user()) as client:
        keep = _create(client, name="keep")
        gone = _create(client, name="gone")
        url = gone["links"]["self"]
        client.put(f"{url}/executable", json={"version": 1, "executable": DOCKER})
        assert client.delete(url, headers={"If-Match": '"2"'}).status_code == 204
        assert client.get(url).status_code == 404
        assert client.get(f"{url}/versions").status_code == 404
        assert client.delete(url).status_code == 404
        assert [w["name"] for w in client.get("/worksteps").json()["worksteps"]] == ["keep"]
        assert client.get(keep["links"]["self"]).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 300}, "name"),
        ({"unknown": 1}, "unknown"),
        ({"request": "not a mapping"}, "request"),
    ],
)
def test_malformed_bodies_are_field_errors(
    editor: Editor, body: dict[str, Any], field: str
) -> None:
    with editor.client(user()) as client:
        assert field in _errors(client.post("/worksteps", json=body))


def test_of_concurrent_edits_on_one_version_exactly_one_wins(editor: Editor) -> None:
    with editor.client(user()) as client:
        url = _create(client)["links"]["self"]
        headers = dict(client.headers)

    def edit(cores: int) -> int:
        compute = {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": cores, "max": cores}}
        answer = httpx.put(
            f"{url}/compute",
            headers={**headers, "If-Match": '"1"'},
            json={"compute": compute},
            timeout=20,
        )
        return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(edit, range(1, 9)))
    assert statuses == [200] + [409] * 7
    with editor.client("operator", roles=["admin"]) as admin:
        versions = admin.get(f"{url}/versions").json()["versions"]
        assert [v["version"] for v in versions] == [1, 2]
        winner = admin.get(url).json()["compute"]["cores"]["min"]
        assert admin.get(f"{url}/versions/2").json()["compute"]["cores"]["min"] == winner


def test_a_restarted_editor_has_everything_and_migrates_once(editor: Editor) -> None:
    with editor.client(user()) as client:
        body = _create(client, name="kept")
        client.put(f"{body['links']['self']}/executable", json={"version": 1, "executable": DOCKER})
        again = start_in_thread(create_app(editor.settings))  # same database, migrated already
        try:
            url = f"{again.url}/worksteps/{body['uuid']}"
            kept = client.get(url)
            assert kept.status_code == 200 and kept.json()["version"] == 2
            assert kept.json()["links"]["self"] == url
            versions = client.get(f"{url}/versions").json()["versions"]
            assert [v["change"] for v in versions] == ["create:empty", "set-executable"]
            assert versions[0]["created"].endswith("Z")
        finally:
            again.stop()
