"""Creating worksteps from data, from a template and from Software Discovery, over real HTTP
(the Software Discovery emulator, DataLink responses, the SRCNet sample documents)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from editor_support import REGISTRY, SAMPLES, Documents, Editor, user

from worksteps.schema import ExecutionRequest, kinds
from worksteps.schema.yaml_codec import encode_yaml

DATALINK = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <RESOURCE type="results">
  <TABLE>
   <FIELD name="ID" datatype="char" arraysize="*"/>
   <FIELD name="access_url" datatype="char" arraysize="*"/>
   <FIELD name="service_def" datatype="char" arraysize="*"/>
   <FIELD name="error_message" datatype="char" arraysize="*"/>
   <FIELD name="semantics" datatype="char" arraysize="*"/>
   <FIELD name="content_type" datatype="char" arraysize="*"/>
   <FIELD name="content_length" datatype="long"/>
   <DATA><TABLEDATA>
    <TR><TD>ivo://example.org/obs?42</TD><TD>https://data.example.org/preview/42.png</TD>
        <TD/><TD/><TD>#preview</TD><TD>image/png</TD><TD>2048</TD></TR>
    <TR><TD>ivo://example.org/obs?42</TD><TD>https://data.example.org/files/42.fits</TD>
        <TD/><TD/><TD>#this</TD><TD>application/fits</TD><TD>3221225472</TD></TR>
   </TABLEDATA></DATA>
  </TABLE>
 </RESOURCE>
</VOTABLE>
"""


def _created(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _errors(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 422, answer.text
    return {e["field"]: e["reason"] for e in answer.json()["errors"]}


def test_from_data_every_kind_of_reference(editor: Editor, documents: Documents) -> None:
    datalink = documents.put("/datalink", DATALINK, content_type="application/x-votable+xml")
    references = [
        "demo:obs-0001.ms.tar",
        "https://example.org/archive/psf.fits",
        f"{datalink}?ID=ivo%3A%2F%2Fexample.org%2Fobs%3F42",
        "ivo://example.org/obs?43",
    ]
    with editor.client(user()) as client:
        body = _created(client.post("/worksteps/from-data", json={"references": references}))
        assert body["origin"] == {"mode": "data", "detail": {"references": references}}
        rucio, plain, linked, ivoid = body["data"]
        assert rucio["kind"] == kinds.DATA_RUCIO
        assert rucio["rucio"] == {"scope": "demo", "object": "obs-0001.ms.tar"}
        assert plain == {
            "kind": kinds.DATA_SIMPLE,
            "meta": {"name": "psf.fits"},
            "location": "https://example.org/archive/psf.fits",
            "storage": "data-storage",
        }
        assert linked["kind"] == kinds.DATA_IVOA
        assert linked["ivoa"]["ivoid"] == "ivo://example.org/obs?42"
        assert linked["ivoa"]["datalink"]["access_url"] == "https://data.example.org/files/42.fits"
        assert linked["ivoa"]["datalink"]["content_length"] == 3 << 30
        assert ivoid["ivoa"] == {"ivoid": "ivo://example.org/obs?43"}
        (storage,) = body["storage"]
        assert storage["data"] == [d["meta"]["name"] for d in body["data"]]
        assert storage["size"]["min"] == 3  # GiB: the DataLink row's size
        mounts = body["compute"]["volumes"]
        assert [(m["resource"], m["mode"]) for m in mounts] == [
            (d["meta"]["name"], "READONLY") for d in body["data"]
        ]
        assert len({m["path"] for m in mounts}) == 4
        assert body["compute"]["cores"] == {"min": 1, "max": 4}
        request = client.get(body["links"]["request"]).json()
        ExecutionRequest.model_validate(request)
        assert [d["kind"] for d in request["data"]] == [d["kind"] for d in body["data"]]


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        ("not a reference", "give a Rucio DID"),
        ("ftp://example.org/x", "give a Rucio DID"),
        ("https:///nohost", "no host"),
    ],
)
def test_from_data_refuses_what_is_not_a_reference(
    editor: Editor, reference: str, reason: str
) -> None:
    with editor.client(user()) as client:
        errors = _errors(
            client.post("/worksteps/from-data", json={"references": ["demo:ok", reference]})
        )
        assert reason in errors["references.1"]
        assert client.get("/worksteps").json() == {"worksteps": []}


def test_a_datalink_without_the_data_says_why(editor: Editor, documents: Documents) -> None:
    error_row = DATALINK.replace(
        "<TD>https://data.example.org/files/42.fits</TD>\n        <TD/><TD/>",
        "<TD/>\n        <TD/><TD>NotFoundFault: obs 42 is embargoed</TD>",
    )
    url = documents.put("/embargoed/links", error_row, content_type="text/xml")
    not_votable = documents.put("/plain/links", "<html/>", content_type="text/html")
    with editor.client(user()) as client:
        errors = _errors(client.post("/worksteps/from-data", json={"references": [url]}))
        assert errors == {"references.0": "NotFoundFault: obs 42 is embargoed"}
        errors = _errors(client.post("/worksteps/from-data", json={"references": [not_votable]}))
        assert "not a VOTable" in errors["references.0"]


def test_every_template_and_the_catalogue(editor: Editor) -> None:
    with editor.client(user()) as client:
        catalogue = client.get("/templates").json()["templates"]
        names = [t["name"] for t in catalogue]
        assert names == ["jupyterlab", "carta", "desktop", "python-script"]
        sessions = {t["name"]: t["session"] for t in catalogue}
        assert sessions == {
            "jupyterlab": "notebook",
            "carta": "carta",
            "desktop": "desktop",
            "python-script": "headless",
        }
        for name in names:
            body = _created(client.post("/worksteps/from-template", json={"template": name}))
            assert body["origin"] == {"mode": "template", "source": name}
            assert body["ready"] is True
            cores, memory = body["compute"]["cores"], body["compute"]["memory"]
            assert 1 <= cores["min"] <= cores["max"] <= 16
            assert 1 <= memory["min"] <= memory["max"] <= 64 and memory["units"] == "GiB"
            assert body["schedule"]["requested"]["duration"].startswith("PT")
        carta = client.get("/templates/carta").json()
        assert carta["request"]["executable"]["image"]["locations"] == [
            f"{REGISTRY}/skaha/carta:4.1"
        ]
        notebook = client.get("/templates/jupyterlab").json()["request"]["executable"]
        assert notebook["kind"] == kinds.EXEC_JUPYTER
        assert notebook["location"] == f"{editor.url}/template-files/welcome.ipynb"
        starter = httpx.get(notebook["location"])  # public: the site fetches it without a token
        assert starter.status_code == 200 and json.loads(starter.content)["nbformat"] == 4
        named = _created(
            client.post("/worksteps/from-template", json={"template": "carta", "name": "look"})
        )
        assert named["name"] == "look"
        errors = _errors(client.post("/worksteps/from-template", json={"template": "nope"}))
        assert "known: jupyterlab, carta" in errors["template"]
        assert client.get("/templates/nope").status_code == 404
        assert httpx.get(f"{editor.url}/template-files/..%2Fdefault.yaml").status_code == 404


def test_from_the_software_discovery_service(editor: Editor, discovery: str) -> None:
    listing = httpx.get(f"{discovery}/software", params={"specification": "carta"}).json()
    (carta,) = [s for s in listing["software"] if s["id"] == "skaha-carta-4.1"]
    with editor.client(user()) as client:
        body = _created(client.post("/worksteps/from-discovery", json={"url": carta["url"]}))
        assert body["executable"]["kind"] == kinds.EXEC_DOCKER
        assert body["executable"]["image"]["locations"] == [f"{REGISTRY}/skaha/carta:4.1"]
        assert body["compute"]["cores"] == {"min": 2, "max": 8}
        assert body["compute"]["memory"] == {"min": 4, "max": 16, "units": "GiB"}
        assert body["origin"]["detail"]["format"] == "software-metadata"
        assert body["origin"]["detail"]["specifications"] == ["carta"]

        sample = _created(
            client.post(
                "/worksteps/from-discovery",
                json={"url": f"{discovery}/software/sample-canucs", "name": "canucs run"},
            )
        )
        assert sample["name"] == "canucs run"
        assert sample["executable"]["image"] == {
            "locations": ["images.canfar.net/canucs/canucs:1.3.0"],
            "digest": "sha256:e0042dd7d213c2a918568af433a228744a071fcb994ea6a8feaf9307c6e7d8d1",
        }
        assert sample["compute"]["cores"] == {"min": 5, "max": 15}
        notebook = _created(
            client.post(
                "/worksteps/from-discovery", json={"url": f"{discovery}/software/sample-notebook"}
            )
        )
        assert notebook["executable"] == {
            "kind": kinds.EXEC_JUPYTER,
            "meta": {"name": "notebook"},
            "location": "https://raw.githubusercontent.com/Zarquan/binder-demo/main/02_dmhh.ipynb",
        }
        errors = _errors(
            client.post("/worksteps/from-discovery", json={"url": f"{discovery}/software"})
        )
        assert "lists 0 software entries" in errors["url"] or "not software" in errors["url"]
        errors = _errors(
            client.post("/worksteps/from-discovery", json={"url": f"{discovery}/software/nope"})
        )
        assert errors == {"url": "it answered HTTP 404"}


@pytest.mark.parametrize("sample", sorted(SAMPLES.rglob("*.yaml")), ids=lambda p: p.name)
def test_the_srcnet_yaml_samples_from_files(editor: Editor, sample: Path) -> None:
    with editor.client(user()) as client:
        answer = client.post("/worksteps/from-discovery", json={"url": sample.as_uri()})
        if not sample.read_bytes().strip():  # the singularity sample is an empty file
            assert "url" in _errors(answer)
            return
        body = _created(answer)
        assert body["executable"]["kind"] in (kinds.EXEC_DOCKER, kinds.EXEC_JUPYTER)
        assert body["compute"]["cores"] == {"min": 5, "max": 15}


def test_an_execution_request_an_image_and_a_notebook(editor: Editor, documents: Documents) -> None:
    ivoa = {
        "name": "my pipeline",
        "executable": {
            "type": "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0",
            "image": {"locations": ["ghcr.io/example/pipeline:2.0"]},
            "command": ["pipeline", "--fast"],
        },
        "computer": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 4, "max": 4}},
    }
    url = documents.put(
        "/repo/ivoa-execution.yaml", encode_yaml(ivoa), content_type="application/yaml"
    )
    with editor.client(user()) as client:
        body = _created(client.post("/worksteps/from-discovery", json={"url": url}))
        assert body["name"] == "my pipeline"
        assert body["executable"]["command"] == ["pipeline", "--fast"]
        assert body["compute"]["cores"] == {"min": 4, "max": 4}
        assert body["origin"]["detail"] == {"format": "ivoa-execution"}

        image = _created(
            client.post("/worksteps/from-discovery", json={"url": "docker://ghcr.io/a/b:1.0"})
        )
        assert image["executable"]["image"]["locations"] == ["ghcr.io/a/b:1.0"]
        assert image["name"] == "b"

        location = f"{editor.url}/template-files/welcome.ipynb"
        notebook = _created(client.post("/worksteps/from-discovery", json={"url": location}))
        assert notebook["executable"]["kind"] == kinds.EXEC_JUPYTER
        assert notebook["executable"]["location"] == location
        assert notebook["origin"]["detail"] == {"format": "notebook"}

        fake = documents.put("/fake.ipynb", '{"cells": "no"}')
        assert (
            "not a Jupyter notebook"
            in _errors(client.post("/worksteps/from-discovery", json={"url": fake}))["url"]
        )
        broken = dict(ivoa, computer={"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 9, "max": 1}})
        url = documents.put("/repo/broken.yaml", encode_yaml(broken), content_type="text/plain")
        assert (
            "greater than max"
            in _errors(client.post("/worksteps/from-discovery", json={"url": url}))["url"]
        )
        huge = dict(ivoa, computer={"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 9999}})
        url = documents.put("/repo/huge.yaml", encode_yaml(huge), content_type="text/yaml")
        assert _errors(client.post("/worksteps/from-discovery", json={"url": url})) == {
            "url": "compute.cores.min: at most 1024 may be asked for"
        }
        for bad in ("Not An Image", "https://"):
            assert "url" in _errors(client.post("/worksteps/from-discovery", json={"url": bad}))
        assert len(client.get("/worksteps").json()["worksteps"]) == 3
