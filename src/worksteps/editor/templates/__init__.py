"""The template catalogue: named starting points (executable + resources) for new worksteps.

The shipped catalogue is ``default.yaml`` beside this module; a file or directory of YAML
files named by the ``templates_path`` setting adds to it (an entry of the same name replaces
the shipped one). Every template is checked when the catalogue loads, so a broken extra
catalogue stops the editor at start-up rather than failing a user later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worksteps.core.errors import BadRequest, FieldError, InvalidInput
from worksteps.editor.model import WorkstepContent, content_of_request
from worksteps.schema import kinds
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.legacy import normalize_request
from worksteps.schema.yaml_codec import decode_yaml

__all__ = ["FILES", "Catalogue", "Template", "TemplateError"]

FILES = Path(__file__).resolve().parent / "files"
_DEFAULT = Path(__file__).resolve().parent / "default.yaml"
_SHORT_KINDS = {
    uri.rsplit("/", 1)[1].removesuffix(".yaml").lower(): uri
    for uri in (
        kinds.EXEC_DOCKER,
        kinds.EXEC_SINGULARITY,
        kinds.EXEC_JUPYTER,
        kinds.COMPUTE_SIMPLE,
        kinds.STORAGE_SIMPLE,
        kinds.VOLUME_SIMPLE,
        kinds.DATA_SIMPLE,
        kinds.DATA_S3,
        kinds.DATA_RUCIO,
        kinds.DATA_IVOA,
        kinds.DATA_SKAO,
    )
}
_PLACEHOLDERS = ("registry", "editor_url")


class TemplateError(ValueError):
    """A catalogue file cannot be read or holds a broken template."""


def _expand(tree: Any, values: dict[str, str]) -> Any:
    """Short kinds to URIs and placeholders to their values, everywhere in ``tree``."""
    if isinstance(tree, dict):
        out = {k: _expand(v, values) for k, v in tree.items()}
        kind = out.get("kind")
        if isinstance(kind, str) and "://" not in kind:
            out["kind"] = _SHORT_KINDS.get(kind.lower(), kind)
        return out
    if isinstance(tree, list):
        return [_expand(v, values) for v in tree]
    if isinstance(tree, str):
        for name, value in values.items():
            tree = tree.replace("{" + name + "}", value)
    return tree


class Template(BaseModel):
    """One entry of the catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    session: Literal["notebook", "carta", "desktop", "headless", "contributed", "firefly"]
    request: dict[str, Any] = Field(description="ExecutionRequest content, placeholders allowed.")

    def content(self, *, registry: str, editor_url: str) -> WorkstepContent:
        """The workstep content this template gives, placeholders filled in."""
        values = {"registry": registry, "editor_url": editor_url.rstrip("/")}
        body = normalize_request(_expand(self.request, values))
        content = content_of_request(ExecutionRequest.model_validate(body))
        if content.name is None:
            content.name = self.title
        return content

    def summary(self, *, registry: str, editor_url: str) -> dict[str, Any]:
        content = self.content(registry=registry, editor_url=editor_url)
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "session": self.session,
            "request": content.to_request().model_dump(mode="json", exclude_none=True),
        }


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    templates: list[Template]


def _read(path: Path) -> list[Template]:
    try:
        document = decode_yaml(path.read_text(encoding="utf-8"))
        templates = _File.model_validate(document).templates
        for template in templates:  # fail now, not when a user picks it
            template.content(registry="registry.invalid", editor_url="http://editor.invalid")
    except (OSError, UnicodeDecodeError, BadRequest, ValidationError) as exc:
        detail = exc.detail if isinstance(exc, BadRequest) else str(exc)
        raise TemplateError(f"template catalogue {path}: {detail}") from exc
    return templates


class Catalogue:
    """The templates by name, in catalogue order."""

    def __init__(self, templates: list[Template]) -> None:
        self._templates: dict[str, Template] = {}
        for template in templates:
            self._templates[template.name] = template

    @classmethod
    def load(cls, extra: Path | None = None) -> Catalogue:
        """The shipped catalogue plus ``extra`` (a YAML file, or a directory of ``*.yaml``)."""
        templates = _read(_DEFAULT)
        if extra is not None:
            if extra.is_dir():
                files = sorted([*extra.glob("*.yaml"), *extra.glob("*.yml")])
            elif extra.is_file():
                files = [extra]
            else:
                raise TemplateError(f"template catalogue {extra} does not exist")
            for path in files:
                templates.extend(_read(path))
        return cls(templates)

    def __iter__(self) -> Any:
        return iter(self._templates.values())

    def get(self, name: str, field: str = "template") -> Template:
        """The template called ``name``, or 422 listing the known ones."""
        template = self._templates.get(name)
        if template is None:
            known = ", ".join(self._templates)
            raise InvalidInput(
                f"There is no template {name!r}; known: {known}.",
                [FieldError(field, f"unknown template (known: {known})")],
            )
        return template
