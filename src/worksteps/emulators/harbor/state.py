"""The site registry's contents as a function of time: what is present now, and since when.

Nothing runs in the background. An image copied in by replication carries an
:class:`Arrival`: the instants its blobs and manifest land, fixed when the copy starts
(from layer sizes and the pull rate). Every question ("is this blob here?", "is this tag
present?") compares those instants with the clock, so progress needs no ticker and a
stopped or failed copy simply never reaches its later instants.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from worksteps.emulators.harbor.config import HarborConfig, ProjectSpec
from worksteps.emulators.harbor.content import Blob, ImageContent

__all__ = ["Arrival", "Project", "RegistryState", "StoredImage"]

Clock = Callable[[], float]


@dataclass
class Arrival:
    """When the pieces of one image land at the site during one replication task."""

    execution_id: int
    started: float
    blob_times: dict[str, float]
    manifest_at: float | None
    failed_at: float | None = None
    cutoff: float = math.inf

    def landed(self, instant: float | None, now: float) -> bool:
        return instant is not None and instant <= now and instant <= self.cutoff


@dataclass
class Project:
    """A project with the identity Harbor gives it."""

    id: int
    spec: ProjectSpec
    created: float


@dataclass
class StoredImage:
    """One tag of one repository at the site: configured as cached, or arriving by copy."""

    id: int
    name: str
    tag: str
    content: ImageContent
    cached_since: float | None
    arrivals: list[Arrival] = field(default_factory=list)
    pulled_at: float | None = None

    @property
    def project(self) -> str:
        return self.name.split("/", 1)[0]

    def pushed_at(self, now: float) -> float | None:
        """When the manifest became available (None: not present at ``now``)."""
        times = [a.manifest_at for a in self.arrivals if a.landed(a.manifest_at, now)]
        if self.cached_since is not None:
            times.append(self.cached_since)
        return min((t for t in times if t is not None), default=None)

    def present(self, now: float) -> bool:
        return self.pushed_at(now) is not None

    def has_blob(self, blob: Blob, now: float) -> bool:
        if self.present(now):
            return True
        return any(a.landed(a.blob_times.get(blob.digest), now) for a in self.arrivals)


class RegistryState:
    """Projects and images of one emulated Harbor, and the clock they are judged by."""

    def __init__(self, config: HarborConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.started = clock()
        self.projects: dict[str, Project] = {}
        for project in config.projects:
            self.add_project(project)
        self.images: dict[tuple[str, str], StoredImage] = {}
        self.repository_ids: dict[str, int] = {}
        for spec in config.images:
            image = self.add_image(spec.name, spec.tag, ImageContent(spec))
            image.cached_since = self.started if spec.cached else None

    def add_project(self, spec: ProjectSpec) -> Project:
        project = Project(len(self.projects) + 1, spec, self.clock())
        self.projects[spec.name] = project
        return project

    def add_image(self, name: str, tag: str, content: ImageContent) -> StoredImage:
        """The image entry for ``name:tag`` (created absent if new)."""
        existing = self.images.get((name, tag))
        if existing is not None:
            return existing
        self.repository_ids.setdefault(name, len(self.repository_ids) + 1)
        image = StoredImage(len(self.images) + 1, name, tag, content, None)
        self.images[(name, tag)] = image
        return image

    def project(self, name_or_id: str) -> Project | None:
        if name_or_id.isdigit():
            return next((p for p in self.projects.values() if p.id == int(name_or_id)), None)
        return self.projects.get(name_or_id)

    def present_images(self, name: str | None = None) -> list[StoredImage]:
        """Images present now (optionally of one repository), in configuration order."""
        now = self.clock()
        return [
            image
            for image in self.images.values()
            if image.present(now) and (name is None or image.name == name)
        ]

    def repositories(self, project: str | None = None) -> dict[str, list[StoredImage]]:
        """Repositories with at least one present artifact, as Harbor lists them."""
        found: dict[str, list[StoredImage]] = {}
        for image in self.present_images():
            if project is None or image.project == project:
                found.setdefault(image.name, []).append(image)
        return found

    def artifacts(self, name: str) -> dict[str, list[StoredImage]]:
        """Present artifacts of a repository: manifest digest -> the tags pointing at it."""
        found: dict[str, list[StoredImage]] = {}
        for image in self.present_images(name):
            found.setdefault(image.content.digest, []).append(image)
        return found

    def resolve(self, name: str, reference: str) -> list[StoredImage]:
        """The present tags a tag or digest reference names (empty when absent)."""
        if reference.startswith("sha256:"):
            return self.artifacts(name).get(reference, [])
        image = self.images.get((name, reference))
        return [image] if image is not None and image.present(self.clock()) else []

    def blob(self, name: str, digest: str) -> tuple[Blob, bool] | None:
        """A blob linked to repository ``name`` now, and whether it is served corrupt."""
        now = self.clock()
        for image in self.images.values():
            if image.name != name:
                continue
            blob = image.content.blob(digest)
            if blob is not None and image.has_blob(blob, now):
                return blob, image.content.is_corrupt(blob)
        return None

    def known_repository(self, name: str) -> bool:
        """A repository exists at the registry once any of its blobs has landed."""
        now = self.clock()
        return any(
            image.name == name
            and (image.present(now) or any(a.started <= now for a in image.arrivals))
            for image in self.images.values()
        )
