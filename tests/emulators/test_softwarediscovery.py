"""The Software Discovery emulator over real HTTP: the rig's images, the SRCNet samples served
unchanged, filters, YAML, and fault injection."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from loopback_support import Loopback
from worksteps.emulators.rig.catalogue import DEFAULT_IMAGES, RigImage
from worksteps.emulators.softwarediscovery import (
    SoftwareDiscoveryConfig,
    SoftwareEntry,
    create_app,
    entries_from_images,
)
from worksteps.schema.yaml_codec import decode_yaml

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "spec" / "software-discovery" / "sample"


def _config() -> SoftwareDiscoveryConfig:
    entries = entries_from_images(DEFAULT_IMAGES, "harbor.example.org:5000")
    for path in sorted(SAMPLES.rglob("*.json")):
        entries.append(SoftwareEntry.from_document(path.stem, json.loads(path.read_text())))
    return SoftwareDiscoveryConfig(entries=entries)


def test_the_listing_and_its_filters(loopback: Loopback) -> None:
    url = loopback(create_app(_config())).url
    listing = httpx.get(f"{url}/software").json()["software"]
    ids = [s["id"] for s in listing]
    assert ids == [
        "skaha-terminal-1.1.2",
        "skaha-astroml-24.07",
        "skaha-carta-4.1",
        "skaha-desktop-1.0",
        "notebook",
        "carta",
        "canucs",
    ]
    assert listing[2]["url"] == f"{url}/software/skaha-carta-4.1"
    assert listing[1]["specifications"] == ["notebook", "headless"]
    notebooks = httpx.get(f"{url}/software", params={"specification": "notebook"}).json()
    assert [s["id"] for s in notebooks["software"]] == ["skaha-astroml-24.07", "canucs"]
    jupyter = httpx.get(f"{url}/software", params={"type": "jupyter-notebook"}).json()
    assert [s["id"] for s in jupyter["software"]] == ["notebook"]
    search = httpx.get(f"{url}/software", params={"q": "CANFAR"}).json()
    assert {s["id"] for s in search["software"]} == {"canucs", "carta", "notebook"}


def test_an_image_entry_in_the_srcnet_format(loopback: Loopback) -> None:
    url = loopback(create_app(_config())).url
    document = httpx.get(f"{url}/software/skaha-carta-4.1").json()
    assert document == {
        "executable": {
            "name": "carta",
            "type": "docker-container",
            "location": ["harbor.example.org:5000/skaha/carta:4.1"],
        },
        "metadata": {
            "description": "carta for carta sessions.",
            "version": "4.1",
            "tag": "4.1",
            "authorName": "SRCNet",
            "specifications": ["carta"],
        },
        "resources": {"cores": {"min": 2, "max": 8}, "memory": {"min": 4, "max": 16}},
    }


@pytest.mark.parametrize("sample", sorted(SAMPLES.rglob("*.json")), ids=lambda p: p.stem)
def test_the_samples_are_served_unchanged(loopback: Loopback, sample: Path) -> None:
    url = loopback(create_app(_config())).url
    original = json.loads(sample.read_text())
    assert httpx.get(f"{url}/software/{sample.stem}").json() == original
    as_yaml = httpx.get(f"{url}/software/{sample.stem}", headers={"Accept": "application/yaml"})
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert decode_yaml(as_yaml.text) == original
    by_query = httpx.get(f"{url}/software/{sample.stem}", params={"format": "yaml"})
    assert decode_yaml(by_query.text) == decode_yaml(sample.with_suffix(".yaml").read_text())


def test_unknown_software_and_injected_faults(loopback: Loopback) -> None:
    served = loopback(create_app(_config()))
    missing = httpx.get(f"{served.url}/software/nothing")
    assert missing.status_code == 404
    assert httpx.get(f"{served.url}/health").json() == {"status": "ok"}
    rules = [{"method": "GET", "path": "^/software/", "error_rate": 1.0, "status": 503}]
    assert httpx.put(f"{served.url}/_emulator/faults", json=rules).status_code == 200
    assert httpx.get(f"{served.url}/software/carta").status_code == 503
    assert httpx.get(f"{served.url}/software").status_code == 200
    calls = httpx.get(f"{served.url}/_emulator/calls").json()
    assert calls["GET /software/carta"] == 1 and calls["GET /software/nothing"] == 1


def test_configuration_is_checked() -> None:
    entry = entries_from_images([RigImage("p/one", "1", ("headless",))], "r")[0]
    assert entry.resources.cores is not None and entry.resources.cores.max == 8
    with pytest.raises(ValidationError, match="unique"):
        SoftwareDiscoveryConfig(entries=[entry, entry])
    broken = entry.document()
    broken["resources"]["cores"] = {"min": 9, "max": 1}
    with pytest.raises(ValidationError, match="greater than max"):
        SoftwareEntry.from_document("x", broken)
    broken = entry.document()
    broken["executable"]["type"] = "virtual-machine"
    with pytest.raises(ValidationError, match=r"executable\.type"):
        SoftwareEntry.from_document("x", broken)
