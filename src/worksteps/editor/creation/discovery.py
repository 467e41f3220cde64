"""From Software Discovery: what to run (and the resources it needs) from a URL or a reference.

``source`` is one of:

- the URL of an SRCNet software-metadata document (``executable`` {name, type, location,
  digest}, ``metadata`` {description, version, specifications…}, ``resources`` {cores,
  memory}), as the Software Discovery service serves it, in JSON or YAML;
- the URL of an ``ivoa-execution.yaml``: an IVOA ExecutionRequest (any kind generation);
- the URL of a Jupyter notebook (``.ipynb``; fetched to check it is one);
- a container image reference (``registry/project/name:tag``, ``docker://`` or ``oci://``
  allowed), used as it is without any fetch.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from worksteps.core.auth import Principal
from worksteps.editor.creation.data import default_compute
from worksteps.editor.fetch import Fetcher, unfetchable
from worksteps.editor.model import Origin, OriginMode, WorkstepContent, content_of_request
from worksteps.editor.validation import IMAGE_REFERENCE
from worksteps.schema import kinds
from worksteps.schema.common import Metadata, MinMax
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.legacy import normalize_request
from worksteps.schema.resources import (
    DockerContainer,
    DockerImage,
    JupyterNotebook,
    SimpleComputeResource,
    SingularityContainer,
)

__all__ = ["from_discovery", "image_content", "notebook_content", "software_content"]

_TYPES = {
    "docker-container": kinds.EXEC_DOCKER,
    "oci-image": kinds.EXEC_DOCKER,
    "jupyter-notebook": kinds.EXEC_JUPYTER,
    "singularity-container": kinds.EXEC_SINGULARITY,
}
_REQUEST_KEYS = {
    "meta", "name", "description", "uuid", "executable", "compute", "computer", "storage",
    "data", "schedule", "costs", "metrics", "volumes", "kind", "type",
}  # fmt: skip


def image_content(reference: str) -> WorkstepContent:
    """A workstep running one container image."""
    repository = reference.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    return WorkstepContent(
        name=repository,
        executable=DockerContainer(
            meta=Metadata(name=repository), image=DockerImage(locations=[reference])
        ),
        compute=default_compute(),
    )


def notebook_content(location: str) -> WorkstepContent:
    """A workstep opening one notebook in JupyterLab."""
    name = posixpath.basename(urlsplit(location).path) or "notebook"
    return WorkstepContent(
        name=name,
        executable=JupyterNotebook(meta=Metadata(name=name), location=location),
        compute=default_compute(),
    )


def _range(value: Any, field: str, units: str | None = None) -> MinMax | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise unfetchable(field, "resource needs must be {min, max}")
    try:
        return MinMax(min=value.get("min"), max=value.get("max"), units=units)
    except ValidationError as exc:
        raise unfetchable(field, f"resource needs: {exc.errors()[0]['msg']}") from None


def software_content(doc: dict[str, Any], field: str) -> tuple[WorkstepContent, dict[str, Any]]:
    """The workstep a software-metadata document describes, and what it said about itself."""
    exe = doc["executable"]
    declared = str(exe.get("type") or exe.get("kind") or "")
    kind = _TYPES.get(declared.lower()) or kinds.canonical_kind(declared)
    if kind is None:
        raise unfetchable(field, f"executable type {declared[:80]!r} is not one Worksteps runs")
    locations = exe.get("location") or exe.get("locations") or []
    locations = [locations] if isinstance(locations, str) else locations
    if not locations or not all(isinstance(x, str) and x for x in locations):
        raise unfetchable(field, "the executable has no location")
    name = str(exe.get("name") or "") or None
    meta = Metadata(name=name)
    executable: DockerContainer | JupyterNotebook | SingularityContainer
    if kind == kinds.EXEC_DOCKER:
        digest = exe.get("digest")
        executable = DockerContainer(
            meta=meta,
            image=DockerImage(
                locations=locations, digest=digest if isinstance(digest, str) else None
            ),
        )
    elif kind == kinds.EXEC_JUPYTER:
        executable = JupyterNotebook(meta=meta, location=locations[0])
    else:
        executable = SingularityContainer(meta=meta, location=locations[0])
    resources = doc.get("resources") or {}
    metadata = doc.get("metadata") or {}
    if not isinstance(resources, dict) or not isinstance(metadata, dict):
        raise unfetchable(field, "metadata and resources must be mappings")
    compute = default_compute()
    if "cores" in resources or "memory" in resources:
        compute = SimpleComputeResource(
            meta=Metadata(name="compute"),
            cores=_range(resources.get("cores"), field),
            memory=_range(resources.get("memory"), field, "GiB"),
        )
    description = metadata.get("description")
    content = WorkstepContent(
        name=name,
        description=description if isinstance(description, str) else None,
        executable=executable,
        compute=compute,
    )
    about = {
        k: metadata[k] for k in ("version", "tag", "authorName", "specifications") if k in metadata
    }
    return content, about


def _request_content(doc: dict[str, Any], field: str) -> WorkstepContent:
    try:
        request = ExecutionRequest.model_validate(normalize_request(doc))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if "://" not in str(p))
        raise unfetchable(
            field, f"the execution request is not valid: {where}: {first['msg']}"
        ) from None
    return content_of_request(request)


def _is_software(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("executable"), dict)
        and (
            "metadata" in doc or "resources" in doc or str(doc["executable"].get("type")) in _TYPES
        )
    )


def _is_notebook(body: bytes) -> bool:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("nbformat"), int) and "cells" in doc


async def from_discovery(
    source: str, *, fetcher: Fetcher, principal: Principal | None, field: str = "url"
) -> tuple[WorkstepContent, Origin]:
    """The content ``source`` describes, and the origin to record; 422 naming ``field``."""
    text = source.strip()
    for prefix in ("docker://", "oci://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if "://" in text:
            return await _fetch_and_read(text, fetcher, principal, field)
    if not IMAGE_REFERENCE.fullmatch(text):
        raise unfetchable(field, "it is neither a URL nor a container image reference")
    return image_content(text), Origin(
        mode=OriginMode.DISCOVERY, source=text, detail={"format": "image"}
    )


async def _fetch_and_read(
    url: str, fetcher: Fetcher, principal: Principal | None, field: str
) -> tuple[WorkstepContent, Origin]:
    fetched = await fetcher.fetch(url, field, principal)
    path = urlsplit(url).path.lower()
    if path.endswith(".ipynb") or _is_notebook(fetched.body):
        if not _is_notebook(fetched.body):
            raise unfetchable(field, "the document is not a Jupyter notebook")
        origin = Origin(mode=OriginMode.DISCOVERY, source=url, detail={"format": "notebook"})
        return notebook_content(url), origin
    doc = fetched.document(field)
    if isinstance(doc, list):
        entries = [d for d in doc if _is_software(d)]
        if len(entries) != 1:
            raise unfetchable(
                field, f"the document lists {len(entries)} software entries; give the URL of one"
            )
        doc = entries[0]
    if _is_software(doc):
        content, about = software_content(doc, field)
        detail = {"format": "software-metadata", **about}
        return content, Origin(mode=OriginMode.DISCOVERY, source=url, detail=detail)
    if isinstance(doc.get("executable"), dict) and set(doc) <= _REQUEST_KEYS:
        content = _request_content(doc, field)
        return content, Origin(
            mode=OriginMode.DISCOVERY, source=url, detail={"format": "ivoa-execution"}
        )
    raise unfetchable(
        field,
        "the document is not software metadata, an IVOA execution request or a Jupyter notebook",
    )
