"""The editor's and the execution service's pages in the gateway, over plain HTTP: the six ways
to create, the four edit forms with their field errors, execute, the offers, select, cancel,
history; another user's things are not reachable."""

import re
import uuid
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from gateway_support import FullGateway, hidden_fields, sign_in

from worksteps.schema.kinds import EXEC_DOCKER

Browser = httpx.Client


@pytest.fixture
def alice(full_gateway: FullGateway) -> Iterator[Browser]:
    with httpx.Client(base_url=full_gateway.url, timeout=20.0) as client:
        sign_in(client, full_gateway.url, "alice")
        yield client


@pytest.fixture
def bob(full_gateway: FullGateway) -> Iterator[Browser]:
    with httpx.Client(base_url=full_gateway.url, timeout=20.0) as client:
        sign_in(client, full_gateway.url, "bob")
        yield client


def _token(client: Browser, path: str = "/worksteps/new") -> str:
    return hidden_fields(client.get(path).text)["csrf_token"]


def _create(client: Browser, mode: str, **fields: str) -> httpx.Response:
    data = {"csrf_token": _token(client), "mode": mode, **fields}
    return client.post("/worksteps/new", data=data)


def _created(client: Browser, mode: str, **fields: str) -> str:
    answer = _create(client, mode, **fields)
    assert answer.status_code == 303, answer.text
    target = answer.headers["location"]
    assert re.fullmatch(r"/worksteps/[0-9a-f-]{36}", target)
    return target


def _edit(client: Browser, page: str, part: str, **fields: str) -> httpx.Response:
    form = hidden_fields(client.get(page).text)
    data = {"csrf_token": form["csrf_token"], "version": form["version"], **fields}
    return client.post(f"{page}/{part}", data=data)


def _field_error(html: str, path: str) -> str:
    """The error shown right below the input of ``path`` (by its aria-describedby)."""
    ident = re.search(rf'id="([a-z]+-f-{re.escape(path.replace(".", "-"))})"', html)
    assert ident, f"no input for {path}"
    assert f'id="{ident[1]}" name="{path}"' in html or f'name="{path}"' in html
    block = re.search(rf'<div class="field-error" id="{ident[1]}-error">(.*?)</div>', html, re.S)
    assert block, f"no error beside {path}"
    assert re.search(rf'id="{ident[1]}"[^>]*aria-invalid="true"', html)
    return unescape(re.sub(r"<[^>]+>", " ", block[1])).strip()


def _version(client: Browser, page: str) -> int:
    return int(hidden_fields(client.get(page).text)["version"])


def test_the_nav_leads_to_worksteps_and_sessions(alice: Browser) -> None:
    home = alice.get("/").text
    assert '<a href="/worksteps">Worksteps</a>' in home
    assert '<a href="/executions">Sessions</a>' in home
    assert alice.get("/worksteps").status_code == 200
    assert alice.get("/executions").status_code == 200
    assert alice.get("/api/worksteps").status_code == 200  # the editor's API, mounted


def test_six_ways_to_create(alice: Browser, full_gateway: FullGateway) -> None:
    page = alice.get("/worksteps/new").text
    for mode in ("empty", "data", "template", "discovery", "history", "provenance"):
        assert f'<input type="hidden" name="mode" value="{mode}">' in page
    empty = _created(alice, "empty", name="Nothing yet")
    assert "Nothing yet" in alice.get(empty).text
    data = _created(alice, "data", references="demo:vlass-cube-0001.fits\ndemo:psf-0004.fits")
    assert "demo:vlass-cube-0001.fits" in alice.get(data).text
    template = _created(alice, "template", template="jupyterlab", name="My notebook")
    assert "My notebook" in alice.get(template).text
    history_url = f"{full_gateway.url}/api{template}"
    copy = _created(alice, "history", url=history_url, name="Copy of my notebook")
    assert copy != template
    assert "Copy of my notebook" in alice.get(copy).text
    listing = alice.get("/worksteps").text
    for name in ("Nothing yet", "My notebook", "Copy of my notebook"):
        assert name in listing


def test_creation_errors_show_beside_their_field(alice: Browser) -> None:
    answer = _create(alice, "data", references="")
    assert answer.status_code == 422
    assert "is empty" in _field_error(answer.text, "references")
    answer = _create(alice, "template", template="no-such-template")
    assert answer.status_code == 422
    assert "unknown template" in _field_error(answer.text, "template")
    answer = _create(alice, "discovery", url="ftp://nowhere.invalid/x")
    assert answer.status_code == 422
    assert _field_error(answer.text, "url")
    assert 'value="ftp://nowhere.invalid/x"' in answer.text  # the input is kept


def test_the_four_edit_forms(alice: Browser) -> None:
    page = _created(alice, "empty", name="Edited")
    assert _version(alice, page) == 1
    answer = _edit(
        alice,
        page,
        "executable",
        **{
            "executable.kind": EXEC_DOCKER,
            "executable.image.locations.0": "images.example.org/skaha/terminal:1.1.2",
            "executable.command": "ls -l '/arc/home/my data'",
        },
    )
    assert answer.status_code == 303, answer.text
    request = alice.get(f"/api{page}/request").json()
    assert request["executable"]["command"] == ["ls", "-l", "/arc/home/my data"]
    assert _edit(alice, page, "compute", **{"compute.cores.min": "2", "compute.cores.max": "4"})
    assert alice.get(f"/api{page}/request").json()["compute"]["cores"] == {"min": 2, "max": 4}
    answer = _edit(alice, page, "data", references="demo:psf-0004.fits")
    assert answer.status_code == 303
    assert "demo:psf-0004.fits" in alice.get(page).text
    new = re.findall(r'name="storage\.(\d+)\.meta\.name"', alice.get(page).text)
    assert new == ["1"]  # the data brought a storage area; the form adds the next one
    fields = {"storage.1.meta.name": "results", "storage.1.size.min": "1"}
    assert _edit(alice, page, "storage", **fields).status_code == 303
    names = [s["meta"]["name"] for s in alice.get(f"/api{page}/request").json()["storage"]]
    assert "results" in names
    versions_before = _version(alice, page)
    data = alice.get(f"/api{page}/request").json()["data"]
    removed = _edit(alice, page, "data", remove=data[0]["meta"]["name"])
    assert removed.status_code == 303
    assert "data" not in alice.get(f"/api{page}/request").json()
    assert _version(alice, page) == versions_before + 1
    assert "set-data" in alice.get(page).text  # the history lists each change


def test_an_invalid_edit_shows_field_errors_and_saves_nothing(alice: Browser) -> None:
    page = _created(alice, "template", template="jupyterlab")
    before = alice.get(f"/api{page}/request").json()
    answer = _edit(alice, page, "compute", **{"compute.cores.min": "8", "compute.cores.max": "2"})
    assert answer.status_code == 422
    assert "greater than max" in _field_error(answer.text, "compute.cores.min")
    assert 'value="8"' in answer.text  # what the user typed is kept
    answer = _edit(alice, page, "compute", **{"compute.memory.max": "lots"})
    assert answer.status_code == 422
    assert "whole number" in _field_error(answer.text, "compute.memory.max")
    answer = _edit(
        alice,
        page,
        "executable",
        **{"executable.kind": EXEC_DOCKER, "executable.image.locations.0": "Not An Image!"},
    )
    assert answer.status_code == 422
    assert _field_error(answer.text, "executable.image.locations.0")
    assert alice.get(f"/api{page}/request").json() == before
    assert _version(alice, page) == 1


def test_an_edit_on_a_stale_version_is_refused(alice: Browser) -> None:
    page = _created(alice, "empty")
    form = hidden_fields(alice.get(page).text)
    first = {"csrf_token": form["csrf_token"], "version": form["version"]}
    assert alice.post(f"{page}/compute", data={**first, "compute.cores.min": "1"}).is_redirect
    stale = alice.post(f"{page}/compute", data={**first, "compute.cores.min": "3"})
    assert stale.status_code == 409
    assert alice.get(f"/api{page}/request").json()["compute"]["cores"] == {"min": 1}


def _execute(client: Browser, page: str) -> str:
    answer = client.post(f"{page}/execute", data={"csrf_token": _token(client, page)})
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def _offers(html: str) -> list[str]:
    return re.findall(r'<tr data-expiry-scope data-offer="([0-9a-f-]+)">', html)


def test_execute_compare_offers_select_and_cancel(alice: Browser) -> None:
    page = _created(alice, "template", template="jupyterlab", name="To run")
    execution = _execute(alice, page)
    html = alice.get(execution).text
    offers = _offers(html)
    assert offers
    for column in ("Start window", "Ready (estimate)", "Data locality", "Resources", "Expires in"):
        assert column in html
    assert "data-expires=" in html
    assert "ready in" in html  # the ranking explained
    sites = re.findall(r'<th scope="row">(site-[abc])</th>', html)
    assert {"site-a", "site-b", "site-c"} <= set(sites)
    assert "error" in html.split('id="sites"')[1]  # site-c is down, and it says so
    token = hidden_fields(html)["csrf_token"]
    chosen = alice.post(f"{execution}/select", data={"csrf_token": token, "offer": offers[0]})
    assert chosen.status_code == 303
    html = alice.get(execution).text
    assert "Session at site-" in html
    assert "data-events=" in html  # the live preparation view follows the events
    assert "Select</button>" not in html
    again = alice.post(f"{execution}/select", data={"csrf_token": token, "offer": offers[-1]})
    assert again.status_code == 409
    cancelled = alice.post(f"{execution}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 303
    assert "CANCELLED" in alice.get(execution).text


def test_history_and_run_again(alice: Browser) -> None:
    page = _created(alice, "template", template="jupyterlab", name="Again and again")
    first = _execute(alice, page)
    token = _token(alice, first)
    alice.post(f"{first}/cancel", data={"csrf_token": token})
    history = alice.get("/executions").text
    assert first.rsplit("/", 1)[1] in history
    assert "Run again" in history
    again = alice.post(f"{first}/again", data={"csrf_token": token})
    assert again.status_code == 303
    assert again.headers["location"] != first
    assert _offers(alice.get(again.headers["location"]).text)


def test_a_workstep_without_an_executable_is_not_executed(alice: Browser) -> None:
    page = _created(alice, "empty")
    html = alice.get(page).text
    assert 'aria-describedby="not-ready"' in html
    answer = alice.post(f"{page}/execute", data={"csrf_token": _token(alice, page)})
    assert answer.status_code == 422
    assert "Nothing was saved" in answer.text


def test_another_users_things_are_not_reachable(alice: Browser, bob: Browser) -> None:
    page = _created(alice, "template", template="jupyterlab", name="Alice's own")
    execution = _execute(alice, page)
    assert bob.get(page).status_code == 404
    assert bob.get(execution).status_code == 404
    assert "Alice's own" not in bob.get("/worksteps").text
    token = _token(bob)
    attempt = bob.post(f"{page}/compute", data={"csrf_token": token, "compute.cores.min": "1"})
    assert attempt.status_code == 404
    assert bob.post(f"{execution}/cancel", data={"csrf_token": token}).status_code == 404
    assert bob.get(f"/worksteps/{uuid.uuid4()}").status_code == 404
    assert bob.get("/worksteps/not-a-uuid").status_code == 404
