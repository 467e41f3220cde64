"""What the Software Discovery emulator lists: software entries in the SRCNet metadata format.

An entry's document is exactly the format of ``shared/spec/software-discovery/sample/``::

    executable: {name, type, location: [..], digest?}
    metadata:   {description, version, tag?, authorName, specifications: [..]}
    resources:  {cores: {min, max}, memory: {min, max}}   (memory in GiB)

:func:`entries_from_images` lists the images of an emulated site (the rig's catalogue) with
resource needs that suit the session kinds they are made for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worksteps.emulators.faults import FaultRule
from worksteps.emulators.rig.catalogue import RigImage

__all__ = [
    "KIND_RESOURCES",
    "SoftwareDiscoveryConfig",
    "SoftwareEntry",
    "SoftwareExecutable",
    "SoftwareMetadata",
    "SoftwareRange",
    "SoftwareResources",
    "entries_from_images",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SoftwareRange(_Model):
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class SoftwareExecutable(_Model):
    name: str = Field(min_length=1, max_length=128)
    type: Literal["docker-container", "jupyter-notebook", "singularity-container"]
    location: list[str] = Field(min_length=1)
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")


class SoftwareMetadata(_Model):
    description: str = ""
    version: str = Field(min_length=1)
    tag: str | None = None
    author_name: str = Field("SRCNet", alias="authorName")
    specifications: list[str] | None = None


class SoftwareResources(_Model):
    cores: SoftwareRange | None = None
    memory: SoftwareRange | None = None


class SoftwareEntry(_Model):
    """One listed piece of software; ``id`` names it in URLs."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")
    executable: SoftwareExecutable
    metadata: SoftwareMetadata
    resources: SoftwareResources = Field(default_factory=SoftwareResources)

    def document(self) -> dict[str, Any]:
        """The entry in the SRCNet software-metadata format."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"id"})

    @classmethod
    def from_document(cls, id: str, document: dict[str, Any]) -> Self:
        return cls.model_validate({"id": id, **document})


KIND_RESOURCES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "notebook": ((1, 4), (2, 8)),
    "carta": ((2, 8), (4, 16)),
    "desktop": ((2, 4), (4, 8)),
    "headless": ((1, 8), (2, 16)),
    "firefly": ((1, 4), (2, 8)),
    "contributed": ((1, 4), (2, 8)),
}
"""Cores and memory (GiB) ranges by session kind."""

_SLUG = re.compile(r"[^a-z0-9._-]+")


def entries_from_images(images: Sequence[RigImage], registry_host: str) -> list[SoftwareEntry]:
    """One entry per image, located at ``registry_host``, sized for its first session kind."""
    entries = []
    for image in images:
        cores, memory = KIND_RESOURCES[image.kinds[0]]
        entries.append(
            SoftwareEntry(
                id=_SLUG.sub("-", f"{image.name}-{image.tag}".lower()).strip("-"),
                executable=SoftwareExecutable(
                    name=image.repository,
                    type="docker-container",
                    location=[f"{registry_host}/{image.name}:{image.tag}"],
                ),
                metadata=SoftwareMetadata(
                    description=f"{image.repository} for {', '.join(image.kinds)} sessions.",
                    version=image.tag,
                    tag=image.tag,
                    specifications=list(image.kinds),
                ),
                resources=SoftwareResources(
                    cores=SoftwareRange(min=cores[0], max=cores[1]),
                    memory=SoftwareRange(min=memory[0], max=memory[1]),
                ),
            )
        )
    return entries


class SoftwareDiscoveryConfig(_Model):
    entries: list[SoftwareEntry] = Field(default_factory=list)
    faults: list[FaultRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("software entry ids must be unique")
        return self
