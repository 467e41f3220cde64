"""What one emulated Harbor holds: projects, images, accounts, its upstream and its speeds.

Every configured image exists upstream; ``cached`` says whether the site already has it.
Image bytes are generated deterministically from the image's name, tag and layer sizes, so an
upstream emulator and a site emulator configured with the same image serve identical blobs
and digests (see :mod:`.content`).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator, model_validator

__all__ = ["HarborConfig", "ImageSpec", "ProjectSpec", "UpstreamSpec", "UserSpec"]

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class UserSpec(BaseModel):
    """A Harbor account (robot accounts are named ``robot$...``)."""

    name: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=255)
    admin: bool = Field(False, description="System administrator: may replicate, sees all.")


class ProjectSpec(BaseModel):
    """A Harbor project; anyone may pull from a public one, members from a private one."""

    name: str = Field(min_length=1, max_length=255, pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
    public: bool = True
    members: list[str] = Field(default_factory=list, description="Users who may pull.")


class ImageSpec(BaseModel):
    """One tagged image: its layers, platform and where it is."""

    project: str
    repository: str = Field(description="Path inside the project; may contain '/'.")
    tag: str = "latest"
    layers: list[int] = Field(
        min_length=1, max_length=128, description="Layer sizes in bytes, base layer first."
    )
    architecture: str = "amd64"
    os: str = "linux"
    media_type: str = Field(
        "oci", pattern="^(oci|docker)$", description="OCI image manifest or Docker v2 schema 2."
    )
    cached: bool = Field(True, description="Already at this site; else only upstream.")
    replication_fails: bool = Field(
        False, description="A copy of this image fails after half its layers have arrived."
    )
    corrupt_layers: list[int] = Field(
        default_factory=list,
        description="Indexes of layers served with bytes that do not match their digest.",
    )

    @field_validator("layers")
    @classmethod
    def _sizes(cls, sizes: list[int]) -> list[int]:
        if any(size < 1 or size > 64 * 2**30 for size in sizes):
            raise ValueError("each layer size must be between 1 byte and 64 GiB")
        return sizes

    @field_validator("repository")
    @classmethod
    def _repository(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"repository {name!r} is not a valid OCI repository path")
        return name

    @field_validator("tag")
    @classmethod
    def _tag(cls, tag: str) -> str:
        if not _TAG.fullmatch(tag):
            raise ValueError(f"tag {tag!r} is not a valid OCI tag")
        return tag

    @property
    def name(self) -> str:
        return f"{self.project}/{self.repository}"


class UpstreamSpec(BaseModel):
    """The registry endpoint images are replicated from (Harbor's ``/registries`` entry)."""

    name: str = "upstream"
    url: str = Field(description="Base URL the upstream registry is reached at.")
    type: str = "harbor"


class HarborConfig(BaseModel):
    """Everything an emulated Harbor starts with."""

    projects: list[ProjectSpec] = Field(default_factory=lambda: [ProjectSpec(name="library")])
    images: list[ImageSpec] = Field(default_factory=list)
    users: list[UserSpec] = Field(
        default_factory=lambda: [UserSpec(name="admin", password="Harbor12345", admin=True)]
    )
    bearer_tokens: dict[str, str] = Field(
        default_factory=dict, description="OIDC-style bearer token -> user name (REST API only)."
    )
    upstream: UpstreamSpec | None = None
    pull_rate: float = Field(
        100e6, gt=0, le=1e12, description="Replication speed per task, bytes per second."
    )
    replication_startup: float = Field(
        0.0, ge=0, le=3600, description="Seconds before a replication task moves bytes."
    )
    serve_rate: float | None = Field(
        None, gt=0, le=1e12, description="Blob download speed, bytes per second; None: unlimited."
    )
    token_lifetime: int = Field(1800, ge=1, le=86400, description="Registry token lifetime, s.")

    @model_validator(mode="after")
    def _consistent(self) -> HarborConfig:
        projects = {p.name for p in self.projects}
        users = {u.name for u in self.users}
        seen: set[tuple[str, str]] = set()
        for image in self.images:
            if image.project not in projects:
                raise ValueError(f"image {image.name}:{image.tag} is in unknown project")
            if (image.name, image.tag) in seen:
                raise ValueError(f"image {image.name}:{image.tag} is configured twice")
            seen.add((image.name, image.tag))
            if any(i < 0 or i >= len(image.layers) for i in image.corrupt_layers):
                raise ValueError(f"image {image.name}:{image.tag}: corrupt layer out of range")
        for project in self.projects:
            if unknown := set(project.members) - users:
                raise ValueError(f"project {project.name}: unknown members {sorted(unknown)}")
        if unknown := set(self.bearer_tokens.values()) - users:
            raise ValueError(f"bearer tokens for unknown users {sorted(unknown)}")
        return self

    def as_upstream(self) -> HarborConfig:
        """The registry this site's images come from: the same images, all present there."""
        images = [
            image.model_copy(
                update={"cached": True, "replication_fails": False, "corrupt_layers": []}
            )
            for image in self.images
        ]
        return self.model_copy(update={"images": images, "upstream": None})
