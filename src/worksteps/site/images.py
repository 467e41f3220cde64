"""The image family: is a container image at this site, bring it here, and check its bytes.

A site runs sessions only from images in its own registry (Skaha trusts images by registry
host). An image that exists only upstream is copied in first; the copy is an external
operation with a reference the caller stores before it polls, so a restarted broker resumes
polling instead of copying twice.

Invariants:
- :class:`ImageRef` is a parsed, validated reference; parsing is the only way to build one
  from text, and an invalid text raises :class:`InvalidImageReference` (a ``ValueError``).
- Adapters report facts (present or not, digest, bytes, the registry's own state of a copy);
  they never decide what a failure means for a session.
- Every method raises only :mod:`worksteps.site.errors` types (plus :class:`DigestMismatch`,
  a :class:`~worksteps.site.errors.PermanentSiteError`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from worksteps.site.errors import PermanentSiteError

__all__ = [
    "DigestMismatch",
    "ImageInfo",
    "ImageRef",
    "ImageRegistry",
    "InvalidImageReference",
    "ProgressCallback",
    "PullState",
    "PullStatus",
]

# Grammar of the OCI distribution spec (repository path components, tags) and of digests.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?")

ProgressCallback = Callable[[int, int], None]
"""Called with ``(bytes_done, bytes_total)`` as bytes arrive; must be quick and not raise."""


class InvalidImageReference(ValueError):
    """The text is not a ``[host/]project/repository[:tag][@digest]`` image reference."""


class DigestMismatch(PermanentSiteError):
    """Bytes served by the registry do not hash to the digest that names them."""


@dataclass(frozen=True)
class ImageRef:
    """A container image in a Harbor: ``registry/project/repository[:tag][@digest]``.

    ``repository`` is the path inside the project and may itself contain ``/``. ``registry``
    is informational: a site always looks the image up in its own Harbor under the same
    project and repository, which is where a copy from upstream lands.
    """

    registry: str | None
    project: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse ``[host[:port]/]project/repository[:tag][@sha256:<64 hex>]``.

        The first component is a host when it contains ``.`` or ``:`` or is ``localhost``
        (the Docker rule). Harbor always has a project, so at least two path components are
        required. Raises :class:`InvalidImageReference` naming the part that is wrong.
        """
        if not text or text != text.strip():
            raise InvalidImageReference(f"image reference {text!r} is empty or has spaces")
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise InvalidImageReference(
                    f"image reference {text!r}: digest {digest!r} is not sha256:<64 hex digits>"
                )
        parts = rest.split("/")
        registry = None
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            registry = parts.pop(0)
            if not _HOST.fullmatch(registry):
                raise InvalidImageReference(f"image reference {text!r}: bad host {registry!r}")
        tag = None
        if ":" in parts[-1]:
            parts[-1], tag = parts[-1].split(":", 1)
            if not _TAG.fullmatch(tag):
                raise InvalidImageReference(f"image reference {text!r}: bad tag {tag!r}")
        if len(parts) < 2:
            raise InvalidImageReference(
                f"image reference {text!r} needs a project and a repository (project/repository)"
            )
        for part in parts:
            if not _COMPONENT.fullmatch(part):
                raise InvalidImageReference(
                    f"image reference {text!r}: path component {part!r} must be lower-case "
                    "letters and digits separated by '.', '_', '__' or '-'"
                )
        return cls(registry, parts[0], "/".join(parts[1:]), tag, digest)

    @property
    def name(self) -> str:
        """The repository name as the OCI API sees it: ``project/repository``."""
        return f"{self.project}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag (``latest``)."""
        return self.digest or self.tag or "latest"

    def at(self, registry: str) -> ImageRef:
        """The same image named under another registry host."""
        return ImageRef(registry, self.project, self.repository, self.tag, self.digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.name}" if self.registry else self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class ImageInfo:
    """What a registry knows about one image.

    ``present`` says whether the site's registry holds it now. When it does not, ``digest``
    and ``size`` come from the upstream registry if that could be asked, else they are None.
    ``size`` counts manifest, config and layer bytes, as Harbor's artifact ``size`` does;
    ``layers_size`` counts only the blobs a copy or pull must move (config and layers), and
    is None when only the registry's artifact record was read. ``reference`` is the name to
    hand to the session service (site host, pinned digest); None while the image is absent.
    """

    image: ImageRef
    present: bool
    digest: str | None = None
    size: int | None = None
    layers_size: int | None = None
    media_type: str | None = None
    architecture: str | None = None
    reference: str | None = None
    pushed_at: datetime | None = None


class PullState(StrEnum):
    """The registry's own state of a copy (Harbor replication: InProgress, Succeed, ...)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        return self is not PullState.RUNNING


@dataclass(frozen=True)
class PullStatus:
    """Progress of one copy into the site, as observed at one moment.

    ``bytes_done``/``bytes_total`` are None when the registry cannot tell (e.g. the upstream
    manifest could not be read); ``percent`` then falls back to finished tasks over all tasks.
    """

    ref: str
    state: PullState
    bytes_done: int | None
    bytes_total: int | None
    percent: float
    message: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None


@runtime_checkable
class ImageRegistry(Protocol):
    """A site's image registry (real: Harbor REST v2.0 + OCI distribution)."""

    async def inspect(self, image: ImageRef) -> ImageInfo:
        """Is ``image`` at this site, and what are its digest and size?

        Absent at the site is a normal answer (``present=False``). Raises ``SiteNotFound``
        when neither the site nor its upstream has the image, ``TransientSiteError`` when a
        registry is unreachable or answers 5xx/429, ``PermanentSiteError`` on other refusals
        (bad credentials, forbidden project).
        """
        ...

    async def ensure_available(self, image: ImageRef) -> str | None:
        """Start copying ``image`` into the site unless it is already there.

        Returns None when the image is present, else the external reference of the copy
        (store it before polling :meth:`status`). A copy of the same image that is already
        running is reused rather than started again. Raises like :meth:`inspect`.
        """
        ...

    async def status(self, ref: str) -> PullStatus:
        """The state and byte progress of the copy ``ref`` returned by :meth:`ensure_available`.

        Raises ``SiteNotFound`` for an unknown reference and ``TransientSiteError`` when the
        registry cannot be reached; a failed copy is a ``FAILED`` status, not an exception.
        """
        ...

    async def verify(self, image: ImageRef, progress: ProgressCallback | None = None) -> ImageInfo:
        """Fetch the manifest and every blob from the site and check each against its digest.

        Streams the bytes (nothing is kept) and reports ``progress`` as they arrive. Raises
        :class:`DigestMismatch` if any bytes do not match, ``SiteNotFound`` if the image is not
        at the site, and the other site errors like :meth:`inspect`.
        """
        ...
