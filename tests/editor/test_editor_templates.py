"""The template catalogue: what ships, extending it by configuration, and refusing broken ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from worksteps.core.auth import AuthSettings
from worksteps.core.errors import InvalidInput
from worksteps.editor.api import create_app
from worksteps.editor.settings import EditorSettings, Limits
from worksteps.editor.templates import Catalogue, TemplateError
from worksteps.editor.validation import check_content
from worksteps.schema import kinds

EXTRA = """
templates:
  - name: casa
    title: CASA in a desktop
    session: desktop
    request:
      executable:
        kind: docker-container
        image: {locations: ["{registry}/radio/casa:6.6"]}
      compute:
        kind: simple-compute-resource
        cores: {min: 4, max: 16}
        memory: {min: 16, max: 64, units: GiB}
  - name: carta
    title: CARTA, site build
    session: carta
    request:
      executable:
        kind: docker-container
        image: {locations: ["{registry}/site/carta:5.0"]}
"""


def test_the_shipped_templates_are_valid_with_sensible_ranges() -> None:
    catalogue = Catalogue.load()
    assert [t.name for t in catalogue] == ["jupyterlab", "carta", "desktop", "python-script"]
    for template in catalogue:
        content = template.content(registry="r.example.org", editor_url="http://e.example.org/")
        assert check_content(content, Limits()) == []
        assert content.compute is not None and content.compute.cores is not None
        assert content.compute.cores.min is not None and content.compute.cores.max is not None
        assert 1 <= content.compute.cores.min < content.compute.cores.max
        request = content.to_request().model_dump(mode="json", exclude_none=True)
        assert request["executable"]["kind"] in (kinds.EXEC_DOCKER, kinds.EXEC_JUPYTER)
        assert "{registry}" not in str(request) and "{editor_url}" not in str(request)


def test_an_extra_catalogue_adds_and_replaces(tmp_path: Path) -> None:
    extra = tmp_path / "site.yaml"
    extra.write_text(EXTRA)
    catalogue = Catalogue.load(extra)
    assert [t.name for t in catalogue] == [
        "jupyterlab",
        "carta",
        "desktop",
        "python-script",
        "casa",
    ]
    carta = catalogue.get("carta").content(registry="reg", editor_url="http://e")
    assert carta.to_request().model_dump(exclude_none=True)["executable"]["image"] == {
        "locations": ["reg/site/carta:5.0"]
    }
    directory = tmp_path / "more"
    directory.mkdir()
    (directory / "a.yaml").write_text(EXTRA)
    assert "casa" in [t.name for t in Catalogue.load(directory)]
    with pytest.raises(InvalidInput) as info:
        catalogue.get("nothing")
    assert info.value.errors[0]["field"] == "template"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("templates: [{name: x}]", "Field required"),
        ("templates:\n  - {name: Bad Name, title: t, session: notebook, request: {}}", "pattern"),
        (
            "templates:\n  - {name: x, title: t, session: notebook, request: {compute: "
            "{kind: simple-compute-resource, cores: {min: 4, max: 1}}}}",
            "greater than max",
        ),
        ("templates: &a [*a]", "anchors"),
        ("- not a catalogue", "valid dictionary"),
    ],
)
def test_a_broken_catalogue_stops_the_editor(tmp_path: Path, text: str, message: str) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    with pytest.raises(TemplateError, match=message):
        Catalogue.load(broken)
    settings = EditorSettings(
        database_url=f"sqlite:///{tmp_path}/e.sqlite",
        auth=AuthSettings(issuer="http://127.0.0.1:1"),
        templates_path=broken,
    )
    with pytest.raises(TemplateError):
        create_app(settings)
    with pytest.raises(TemplateError, match="does not exist"):
        Catalogue.load(tmp_path / "missing.yaml")


def test_the_editor_needs_an_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("WORKSTEPS_EDITOR_"):
            monkeypatch.delenv(name)
    with pytest.raises(ValidationError, match="auth"):
        EditorSettings()
    monkeypatch.setenv("WORKSTEPS_EDITOR_AUTH__ISSUER", "https://iam.example.org")
    monkeypatch.setenv("WORKSTEPS_EDITOR_FETCH__TRUSTED_ORIGINS", '["https://gw.example.org"]')
    settings = EditorSettings()
    assert settings.auth.issuer == "https://iam.example.org"
    assert settings.fetch.trusted_origins == ["https://gw.example.org:443"]
