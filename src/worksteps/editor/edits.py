"""The edits a user makes to a workstep, each a change to its content.

An edit is parsed when it is made (so a malformed part is refused before anything is read)
and applied to a copy of the current content; the service then names unnamed resources,
checks the whole result and stores it as a new version, or refuses it and stores nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worksteps.core.errors import FieldError, InvalidInput
from worksteps.editor.model import WorkstepContent
from worksteps.editor.validation import field_errors, parse_part
from worksteps.schema.common import LifecycleComponent, Metadata
from worksteps.schema.documents import RequestedScheduleBlock
from worksteps.schema.resources import ComputeResource, DataResource, Executable, StorageResource

__all__ = [
    "Edit",
    "name_resources",
    "remove_data",
    "set_compute",
    "set_data",
    "set_details",
    "set_executable",
    "set_storage",
]

Edit = Callable[[WorkstepContent], Awaitable[None]]
"""Changes a content in place (async: adding data may resolve DataLink URLs)."""


def set_executable(value: Any) -> Edit:
    executable: Executable | None = parse_part(Executable | None, value, "executable")

    async def apply(content: WorkstepContent) -> None:
        content.executable = executable

    return apply


def set_compute(value: Any) -> Edit:
    compute: ComputeResource | None = parse_part(ComputeResource | None, value, "compute")

    async def apply(content: WorkstepContent) -> None:
        content.compute = compute

    return apply


def set_data(value: Any) -> Edit:
    data: list[DataResource] = parse_part(list[DataResource], value, "data")

    async def apply(content: WorkstepContent) -> None:
        content.data = data

    return apply


def set_storage(value: Any) -> Edit:
    storage: list[StorageResource] = parse_part(list[StorageResource], value, "storage")

    async def apply(content: WorkstepContent) -> None:
        content.storage = storage

    return apply


class _Details(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=16384)
    schedule: RequestedScheduleBlock | None = None


def set_details(changes: dict[str, Any]) -> Edit:
    """Name, description and schedule; only the keys present are changed (None clears)."""
    try:
        details = _Details.model_validate(changes)
    except ValidationError as exc:
        raise InvalidInput("The change is not valid.", field_errors(exc, "")) from None
    present = details.model_fields_set

    async def apply(content: WorkstepContent) -> None:
        for key in present:
            setattr(content, key, getattr(details, key))

    return apply


def remove_data(name: str) -> Edit:
    """Remove one data resource with its mounts and its mentions in storage."""

    async def apply(content: WorkstepContent) -> None:
        names = [d.meta.name if d.meta else None for d in content.data]
        if name not in names:
            raise InvalidInput(
                f"The workstep has no data resource {name!r}.",
                [FieldError("data", f"no data resource is named {name!r}")],
            )
        content.data = [d for d in content.data if not (d.meta and d.meta.name == name)]
        for store in content.storage:
            if store.data:
                store.data = [ref for ref in store.data if ref != name] or None
        if content.compute is not None and content.compute.volumes:
            kept = [v for v in content.compute.volumes if v.resource != name]
            content.compute.volumes = kept or None

    return apply


def name_resources(content: WorkstepContent) -> None:
    """Give every unnamed storage, data and volume resource a unique name (in place)."""
    items: list[tuple[str, LifecycleComponent]] = [
        *(("storage", s) for s in content.storage),
        *(("data", d) for d in content.data),
        *(("volume", v) for v in (content.compute.volumes or [] if content.compute else [])),
    ]
    taken = {i.meta.name for _, i in items if i.meta and i.meta.name}
    counters: dict[str, int] = {}
    for family, item in items:
        if item.meta is not None and item.meta.name:
            continue
        n = counters.get(family, 0)
        while f"{family}-{n}" in taken:
            n += 1
        name = f"{family}-{n}"
        counters[family] = n + 1
        taken.add(name)
        item.meta = item.meta or Metadata()
        item.meta.name = name
