"""From data provenance: re-create the activity a W3C PROV-JSON record says produced the data.

A Worksteps record gives the whole request back. Another producer's record gives what it can:
its inputs become data resources (as in "from data") and a software agent or plan that is an
image reference or a notebook URL becomes the executable. A URL fragment (``…#ex:clean``)
chooses the activity when the record names several.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from worksteps.core.auth import Principal
from worksteps.core.errors import InvalidInput
from worksteps.editor.creation.data import attach, classify, data_resources, taken_names
from worksteps.editor.creation.discovery import image_content, notebook_content
from worksteps.editor.fetch import Fetcher, unfetchable
from worksteps.editor.model import Origin, OriginMode, WorkstepContent, content_of_request
from worksteps.editor.validation import IMAGE_REFERENCE
from worksteps.schema.provenance import ProvenanceError, ProvenanceRecord, read_provenance

__all__ = ["from_provenance"]


def _executable_from(record: ProvenanceRecord, content: WorkstepContent) -> None:
    for software in record.software:
        text = software.strip()
        if urlsplit(text).path.lower().endswith(".ipynb") and "://" in text:
            content.executable = notebook_content(text).executable
            return
        if "://" not in text and IMAGE_REFERENCE.fullmatch(text) and ("/" in text or ":" in text):
            content.executable = image_content(text).executable
            return


def _usable_inputs(record: ProvenanceRecord) -> list[str]:
    usable = []
    for location in record.inputs:
        try:
            classify(location, "inputs")
        except InvalidInput:
            continue
        usable.append(location)
    return usable


async def from_provenance(
    url: str,
    *,
    fetcher: Fetcher,
    principal: Principal | None,
    datalink_service: str | None = None,
    field: str = "url",
) -> tuple[WorkstepContent, Origin]:
    """The content the record at ``url`` describes, and the origin to record."""
    url = url.strip()
    fragment = unquote(urlsplit(url).fragment) or None
    fetched = await fetcher.fetch(url.split("#", 1)[0], field, principal)
    document = fetched.document(field)
    try:
        record = read_provenance(document, activity=fragment)
    except ProvenanceError as exc:
        raise unfetchable(field, f"the provenance record cannot be read: {exc}") from None
    content = content_of_request(record.request)
    if record.request.executable is None:
        _executable_from(record, content)
    if not content.data and (inputs := _usable_inputs(record)):
        resources = await data_resources(
            inputs,
            fetcher=fetcher,
            principal=principal,
            taken=taken_names(content),
            datalink_service=datalink_service,
            field=field,
        )
        attach(content, resources)
    if content.executable is None and not content.data:
        raise unfetchable(field, "the provenance record names neither software nor data to use")
    if content.name is None:
        content.name = (
            f"Re-run of {record.workstep.name}"
            if record.workstep and record.workstep.name
            else None
        )
    detail: dict[str, Any] = {"activity": record.activity}
    for key in ("session", "site", "broker", "phase"):
        if (value := getattr(record, key)) is not None:
            detail[key] = value
    if record.workstep is not None:
        detail["workstep"] = record.workstep.model_dump(mode="json")
    if record.outputs:
        detail["outputs"] = record.outputs
    return content, Origin(mode=OriginMode.PROVENANCE, source=url, detail=detail)
