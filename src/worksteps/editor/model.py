"""The Workstep: one piece of work described once, and its lossless IVOA ExecutionRequest form.

A Workstep is ``{uuid, owner, name, executable, data, compute, storage, schedule, origin,
version}`` plus what else an ExecutionRequest may carry (a description, costs, metrics), so
nothing is lost either way:

- ``Workstep.from_request(w.to_request(), **identity(w)) == w`` for every workstep;
- ``Workstep.from_request(r, ...).to_request() == r`` for every request whose ``meta`` holds
  only ``name`` / ``description`` (a request's uuid, url and timestamps name one submission,
  not the work) and whose lists are absent rather than empty (an empty list means "none" and is
  written as absent).

The content (everything but identity and bookkeeping) is :class:`WorkstepContent`; creation
modes produce content, edits replace parts of it, the store keeps one content per version.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from worksteps.schema.common import Cost, Metadata, Metric
from worksteps.schema.documents import ExecutionRequest, RequestedScheduleBlock
from worksteps.schema.resources import ComputeResource, DataResource, Executable, StorageResource

__all__ = ["Origin", "OriginMode", "Workstep", "WorkstepContent", "content_of_request"]

_T = TypeVar("_T")


class OriginMode(StrEnum):
    """How a workstep was first made."""

    EMPTY = "empty"
    REQUEST = "request"
    DATA = "data"
    TEMPLATE = "template"
    DISCOVERY = "discovery"
    HISTORY = "history"
    PROVENANCE = "provenance"


class Origin(BaseModel):
    """Where a workstep came from: the mode and its source (a template name, a URL…)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: OriginMode
    source: str | None = Field(None, max_length=4096, description="Template name or URL.")
    detail: dict[str, Any] | None = Field(
        None, description="What the source said beside the work itself (site, session, …)."
    )


class WorkstepContent(BaseModel):
    """What a workstep asks for: the parts of an ExecutionRequest, lists never ``None``."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=256)
    description: str | None = Field(None, max_length=16384)
    executable: Executable | None = None
    compute: ComputeResource | None = None
    storage: list[StorageResource] = Field(default_factory=list)
    data: list[DataResource] = Field(default_factory=list)
    schedule: RequestedScheduleBlock | None = None
    costs: list[Cost] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)

    def to_request(self) -> ExecutionRequest:
        """The IVOA ExecutionRequest that asks for exactly this (current kind URIs)."""
        meta = None
        if self.name is not None or self.description is not None:
            meta = Metadata(name=self.name, description=self.description)
        return ExecutionRequest(
            meta=meta,
            executable=_copy(self.executable),
            compute=_copy(self.compute),
            storage=[_copy(s) for s in self.storage] or None,
            data=[_copy(d) for d in self.data] or None,
            schedule=_copy(self.schedule),
            costs=[_copy(c) for c in self.costs] or None,
            metrics=[_copy(m) for m in self.metrics] or None,
        )


def content_of_request(request: ExecutionRequest) -> WorkstepContent:
    """The content of a request (its ``meta`` beyond name and description is not content)."""
    meta = request.meta or Metadata()
    return WorkstepContent(
        name=meta.name,
        description=meta.description,
        executable=_copy(request.executable),
        compute=_copy(request.compute),
        storage=[_copy(s) for s in request.storage or []],
        data=[_copy(d) for d in request.data or []],
        schedule=_copy(request.schedule),
        costs=[_copy(c) for c in request.costs or []],
        metrics=[_copy(m) for m in request.metrics or []],
    )


class Workstep(WorkstepContent):
    """A stored workstep at one version."""

    uuid: UUID
    owner: str = Field(min_length=1, max_length=256)
    origin: Origin
    version: int = Field(ge=1)
    created: datetime
    modified: datetime

    @classmethod
    def from_request(
        cls,
        request: ExecutionRequest,
        *,
        uuid: UUID,
        owner: str,
        origin: Origin,
        version: int,
        created: datetime,
        modified: datetime,
    ) -> Self:
        """A workstep with the content of ``request`` and the identity given."""
        content = content_of_request(request)
        return cls(
            **dict(content),
            uuid=uuid,
            owner=owner,
            origin=origin,
            version=version,
            created=created,
            modified=modified,
        )

    @property
    def content(self) -> WorkstepContent:
        return WorkstepContent.model_validate(
            self.model_dump(include=set(WorkstepContent.model_fields))
        )

    @property
    def ready(self) -> bool:
        """Whether a broker could be asked: an executable is the one thing nothing defaults."""
        return self.executable is not None


def _copy(value: _T) -> _T:
    """A deep copy of a model (the schema models are mutable; workstep parts must not alias)."""
    if isinstance(value, BaseModel):
        return value.model_copy(deep=True)
    return value
