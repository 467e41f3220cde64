"""What the embedded federation is made of: its sites, the data lake, the images, the users.

The defaults make the demonstration: three sites of different sizes, one Rucio catalogue whose
demo files have replicas at different sites, and a different set of images already cached at
each site, so that the offers of the three brokers really differ (start, data locality,
estimated time to ready). A YAML file with the same fields replaces any part of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator

from worksteps.broker.settings import Capacity

__all__ = [
    "DEFAULT_SITES",
    "FederationConfig",
    "FileSpec",
    "ImageSpec",
    "SiteSpec",
    "UserSpec",
]

_NAME = r"^[a-z0-9][a-z0-9-]{0,30}$"


class ImageSpec(BaseModel):
    """A container image of the central registry: ``project/name:tag`` for these sessions."""

    name: str = Field(pattern=r"^[a-z0-9]+/[a-z0-9][a-z0-9._-]*$")
    tag: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
    kinds: list[str] = Field(min_length=1, description="Session kinds the image is made for.")
    layers: list[int] = Field([4096, 16384], min_length=1, description="Layer sizes in bytes.")

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"


class FileSpec(BaseModel):
    """A file of the demo Rucio scope ``demo``, with replicas at the named sites."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,99}$")
    size: int = Field(ge=1, le=2**31, description="Bytes.")
    sites: list[str] = Field(min_length=1, description="Sites whose storage holds a replica.")


class DatasetSpec(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,99}$")
    files: list[str] = Field(min_length=1)


class SiteSpec(BaseModel):
    """One SRCNet site: its broker's capacity, its storage element and its image cache."""

    name: str = Field(pattern=_NAME)
    capacity: Capacity = Field(default_factory=Capacity)
    cached: list[str] = Field(
        default_factory=list, description="Images (project/name:tag) already in its Harbor."
    )
    start_latency: float = Field(1.0, ge=0, le=600, description="Skaha Pending time, s.")
    storage_bandwidth: float = Field(50e6, gt=0, description="Cavern copy rate, bytes/s.")
    image_pull_rate: float = Field(20e6, gt=0, description="Harbor replication rate, bytes/s.")
    broker_port: int | None = Field(None, ge=1, le=65535, description="None: any free port.")

    @property
    def rse(self) -> str:
        return self.name.upper()


class UserSpec(BaseModel):
    """A user of the development sign-in (the local OIDC issuer)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,30}$")
    display: str = ""
    roles: list[str] = Field(default_factory=list)


DEFAULT_IMAGES = [
    ImageSpec(name="skaha/terminal", tag="1.1.2", kinds=["headless"]),
    ImageSpec(name="skaha/astroml", tag="24.07", kinds=["notebook", "headless"]),
    ImageSpec(name="skaha/carta", tag="4.1", kinds=["carta"], layers=[8192, 65536]),
    ImageSpec(name="skaha/desktop", tag="1.0", kinds=["desktop"]),
]

DEFAULT_SITES = [
    SiteSpec(
        name="site-a",
        capacity=Capacity(cores=32, memory=128, gpus=0, storage=2000),
        cached=["skaha/terminal:1.1.2", "skaha/astroml:24.07"],
        start_latency=0.5,
    ),
    SiteSpec(
        name="site-b",
        capacity=Capacity(cores=64, memory=256, gpus=0, storage=8000),
        cached=["skaha/terminal:1.1.2", "skaha/carta:4.1", "skaha/desktop:1.0"],
        start_latency=1.0,
    ),
    SiteSpec(
        name="site-c",
        capacity=Capacity(cores=16, memory=64, gpus=2, storage=1000),
        cached=["skaha/terminal:1.1.2"],
        start_latency=1.5,
        storage_bandwidth=20e6,
    ),
]

DEFAULT_FILES = [
    FileSpec(name="vlass-cube-0001.fits", size=4 * 1024 * 1024, sites=["site-a"]),
    FileSpec(name="askap-obs-0002.ms.tar", size=2 * 1024 * 1024, sites=["site-b"]),
    FileSpec(name="meerkat-img-0003.fits", size=1024 * 1024, sites=["site-b", "site-c"]),
    FileSpec(name="psf-0004.fits", size=16 * 1024, sites=["site-a", "site-b", "site-c"]),
]

DEFAULT_DATASETS = [
    DatasetSpec(name="survey-2024", files=["askap-obs-0002.ms.tar", "meerkat-img-0003.fits"])
]

DEFAULT_USERS = [
    UserSpec(name="alice", display="Alice (astronomer)"),
    UserSpec(name="bob", display="Bob (astronomer)"),
    UserSpec(name="admin", display="Site operator", roles=["admin"]),
]


class FederationConfig(BaseModel):
    """Everything ``worksteps up`` starts, and where it keeps its state."""

    data_dir: Path = Field(Path("data"), description="SQLite files, emulator state, keys.")
    host: str = Field("127.0.0.1", description="Interface every service listens on.")
    port: int = Field(8080, ge=0, le=65535, description="The Science Gateway's port (0: any).")
    sites: list[SiteSpec] = Field(default_factory=lambda: list(DEFAULT_SITES), min_length=1)
    images: list[ImageSpec] = Field(default_factory=lambda: list(DEFAULT_IMAGES), min_length=1)
    files: list[FileSpec] = Field(default_factory=lambda: list(DEFAULT_FILES))
    datasets: list[DatasetSpec] = Field(default_factory=lambda: list(DEFAULT_DATASETS))
    users: list[UserSpec] = Field(default_factory=lambda: list(DEFAULT_USERS), min_length=1)
    bandwidth: float = Field(8e6, gt=0, description="Rucio transfers between sites, bytes/s.")
    offer_ttl: str = Field("PT5M", description="How long an offer holds capacity.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("site names must be unique")
        images = {i.reference for i in self.images}
        for site in self.sites:
            if unknown := sorted(set(site.cached) - images):
                raise ValueError(f"site {site.name} caches unknown images {unknown}")
        for file in self.files:
            if unknown := sorted(set(file.sites) - set(names)):
                raise ValueError(f"file {file.name} has replicas at unknown sites {unknown}")
        known = {f.name for f in self.files}
        for dataset in self.datasets:
            if unknown := sorted(set(dataset.files) - known):
                raise ValueError(f"dataset {dataset.name} names unknown files {unknown}")
        return self
