"""The bodies the editor's API accepts (parts of a workstep stay JSON here: the edits parse
them, so their errors name the workstep's fields), and its one extra problem type."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from worksteps.core.errors import WorkstepsError

__all__ = [
    "AddData",
    "CreateEmpty",
    "CreateFromData",
    "CreateFromTemplate",
    "CreateFromUrl",
    "PreconditionRequired",
    "SetCompute",
    "SetData",
    "SetDetails",
    "SetExecutable",
    "SetStorage",
]


class PreconditionRequired(WorkstepsError):
    status = 428
    title = "Precondition required"


Reference = Annotated[str, Field(min_length=1, max_length=4096)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateEmpty(_Body):
    name: str | None = Field(None, max_length=256)
    request: dict[str, Any] | None = Field(None, description="An IVOA ExecutionRequest to hold.")


class CreateFromData(_Body):
    references: list[Reference] = Field(
        min_length=1, max_length=256, description="Rucio DIDs, ivoids, DataLink or plain URLs."
    )
    name: str | None = Field(None, max_length=256)


class CreateFromTemplate(_Body):
    template: str = Field(max_length=64)
    name: str | None = Field(None, max_length=256)


class CreateFromUrl(_Body):
    url: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(None, max_length=256)


class _Edit(_Body):
    version: int | None = Field(None, ge=1, description="The version this change is based on.")


class SetExecutable(_Edit):
    executable: dict[str, Any] | None


class SetCompute(_Edit):
    compute: dict[str, Any] | None


class SetData(_Edit):
    data: list[dict[str, Any]]


class AddData(_Edit):
    references: list[Reference] = Field(min_length=1, max_length=256)


class SetStorage(_Edit):
    storage: list[dict[str, Any]]


class SetDetails(_Edit):
    name: str | None = None
    description: str | None = None
    schedule: dict[str, Any] | None = None
