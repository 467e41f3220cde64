"""What an emulated site holds: demo datasets (Rucio scope ``demo``) and container images.

Demo files carry readable text (each line names the file and its line number), so a session
that prints one shows which file it saw; their bytes are written once, under the rig's root,
and Rucio serves every replica with exactly those bytes (its ``source`` files).

Images are named ``project/name`` with exactly one ``/`` because the canfar client accepts no
deeper image path; the project becomes a public Harbor project.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from worksteps.emulators.harbor import ImageSpec, ProjectSpec
from worksteps.emulators.rucio import DatasetConfig, FileConfig
from worksteps.emulators.skaha import ImageEntry
from worksteps.emulators.skaha.config import SESSION_KINDS

__all__ = [
    "DEFAULT_DATASETS",
    "DEFAULT_FILES",
    "DEFAULT_IMAGES",
    "DEMO_SCOPE",
    "DemoDataset",
    "DemoFile",
    "PlacedFile",
    "RigImage",
    "demo_text",
    "harbor_images",
    "placed_catalogue",
    "rucio_catalogue",
    "skaha_images",
]

DEMO_SCOPE = "demo"
_DID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_]{0,99}")
_IMAGE_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


@dataclass(frozen=True)
class DemoFile:
    """A file DID ``demo:<name>`` and where its replicas are when the rig starts.

    ``at_site``: a replica at the site's own RSE (the data is local). ``remote``: a replica at
    the remote RSE. At least one of the two must hold it.
    """

    name: str
    size: int
    at_site: bool = False
    remote: bool = True

    def __post_init__(self) -> None:
        if not _DID_NAME.fullmatch(self.name):
            raise ValueError(f"demo file name {self.name!r}: letters, digits, '.', '-', '_'")
        if not 1 <= self.size <= 2**31:
            raise ValueError(f"demo file {self.name}: size must be 1 byte to 2 GiB")
        if not (self.at_site or self.remote):
            raise ValueError(f"demo file {self.name} must have a replica somewhere")


@dataclass(frozen=True)
class PlacedFile:
    """A file DID ``demo:<name>`` of ``size`` bytes with replicas at the RSEs ``rses``."""

    name: str
    size: int
    rses: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rses", tuple(self.rses))
        DemoFile(self.name, self.size)  # the same name and size rules
        if not self.rses:
            raise ValueError(f"demo file {self.name} must have a replica somewhere")


@dataclass(frozen=True)
class DemoDataset:
    """A dataset DID ``demo:<name>`` made of demo files (named without the scope)."""

    name: str
    files: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))
        if not _DID_NAME.fullmatch(self.name) or not self.files:
            raise ValueError(f"demo dataset {self.name!r}: a valid name and at least one file")


@dataclass(frozen=True)
class RigImage:
    """A container image of the site: ``name`` is ``project/name``; ``kinds`` the session
    types it is labelled for; ``cached`` False means only the upstream registry has it."""

    name: str
    tag: str
    kinds: tuple[str, ...]
    layers: tuple[int, ...] = (2048, 8192)
    cached: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "layers", tuple(self.layers))
        if not _IMAGE_NAME.fullmatch(self.name):
            raise ValueError(f"image name {self.name!r} must be 'project/name' (one '/')")
        if unknown := [k for k in self.kinds if k not in SESSION_KINDS]:
            raise ValueError(f"image {self.name}: unknown session kinds {unknown}")
        if not self.kinds or not self.layers:
            raise ValueError(f"image {self.name}: give at least one kind and one layer")

    @property
    def project(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def repository(self) -> str:
        return self.name.split("/", 1)[1]


DEFAULT_FILES = (
    DemoFile("obs-0001.ms.tar", 64 * 1024, at_site=True),
    DemoFile("obs-0002.fits", 256 * 1024),
    DemoFile("cube-0003.fits", 1024 * 1024),
    DemoFile("psf-0004.fits", 16 * 1024, at_site=True, remote=False),
)
"""Files of the default catalogue: one at both RSEs, two only remote, one only at the site."""

DEFAULT_DATASETS = (DemoDataset("survey-2024", ("obs-0001.ms.tar", "obs-0002.fits")),)

DEFAULT_IMAGES = (
    RigImage("skaha/terminal", "1.1.2", ("headless",)),
    RigImage("skaha/astroml", "24.07", ("notebook", "headless"), cached=False),
    RigImage("skaha/carta", "4.1", ("carta",), cached=False),
    RigImage("skaha/desktop", "1.0", ("desktop",)),
)
"""Images of the default site: a terminal and a desktop cached, the rest only upstream."""


def demo_text(scope: str, name: str, size: int) -> bytes:
    """``size`` bytes of numbered lines naming ``scope:name``."""
    lines: list[bytes] = []
    length = number = 0
    while length < size:
        line = f"{scope}:{name} line {number:06d}\n".encode()
        lines.append(line)
        length += len(line)
        number += 1
    return b"".join(lines)[:size]


def rucio_catalogue(
    directory: Path,
    files: Sequence[DemoFile],
    datasets: Sequence[DemoDataset],
    *,
    site_rse: str,
    remote_rse: str,
) -> tuple[list[FileConfig], list[DatasetConfig]]:
    """Rucio's file and dataset DIDs of one site and its remote RSE (see :class:`DemoFile`)."""
    placed = [
        PlacedFile(
            demo.name,
            demo.size,
            tuple(r for r, held in ((site_rse, demo.at_site), (remote_rse, demo.remote)) if held),
        )
        for demo in files
    ]
    return placed_catalogue(directory, placed, datasets, {site_rse, remote_rse})


def placed_catalogue(
    directory: Path,
    files: Sequence[PlacedFile],
    datasets: Sequence[DemoDataset],
    rses: set[str],
) -> tuple[list[FileConfig], list[DatasetConfig]]:
    """Rucio's file and dataset DIDs; each file's bytes are written to ``directory``."""
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise ValueError("demo file names must be unique")
    for dataset in datasets:
        if unknown := sorted(set(dataset.files) - set(names)):
            raise ValueError(f"demo dataset {dataset.name}: unknown files {unknown}")
    for demo in files:
        if unknown := sorted(set(demo.rses) - rses):
            raise ValueError(f"demo file {demo.name}: unknown storage elements {unknown}")
    directory.mkdir(parents=True, exist_ok=True)
    configs = []
    for demo in files:
        source = directory / demo.name
        source.write_bytes(demo_text(DEMO_SCOPE, demo.name, demo.size))
        configs.append(
            FileConfig(scope=DEMO_SCOPE, name=demo.name, source=source, rses=list(demo.rses))
        )
    sets = [DatasetConfig(scope=DEMO_SCOPE, name=d.name, files=list(d.files)) for d in datasets]
    return configs, sets


def harbor_images(images: Sequence[RigImage]) -> tuple[list[ProjectSpec], list[ImageSpec]]:
    """Harbor's (public) projects and images."""
    projects = sorted({image.project for image in images})
    specs = [
        ImageSpec(
            project=image.project,
            repository=image.repository,
            tag=image.tag,
            layers=list(image.layers),
            cached=image.cached,
        )
        for image in images
    ]
    return [ProjectSpec(name=p) for p in projects], specs


def skaha_images(images: Sequence[RigImage], registry_host: str) -> list[ImageEntry]:
    """What Skaha lists: every image the site's Harbor knows, cached or still upstream."""
    return [
        ImageEntry(id=f"{registry_host}/{image.name}:{image.tag}", types=list(image.kinds))
        for image in images
    ]
