"""User storage: the family of services that hold a user's files at a site (Cavern, VOSpace).

The broker uses it while preparing a session: make sure the user's working area exists, place
staged data in it (an asynchronous transfer it polls), look at what is there, and clean up.
Storage is addressed by node URIs (``vos://<authority>~cavern/home/<user>/...``); transfers by
an opaque reference that the caller stores *before* it polls, so a restarted broker resumes
polling the same transfer instead of starting another.

Every method raises only :mod:`worksteps.site.errors`: ``TransientSiteError`` (worth retrying:
5xx, 429, timeouts, connection failures), ``PermanentSiteError`` (bad input, quota, forbidden,
an operation the service does not support) and its subclass ``SiteNotFound``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

__all__ = ["StorageEntry", "TransferPhase", "TransferStatus", "UserStorage"]


class TransferPhase(StrEnum):
    """UWS phases of a transfer job, as the storage service reports them."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"
    UNKNOWN = "UNKNOWN"

    @property
    def finished(self) -> bool:
        """True once the job will not change by itself any more."""
        return self in (
            TransferPhase.COMPLETED,
            TransferPhase.ERROR,
            TransferPhase.ABORTED,
            TransferPhase.ARCHIVED,
        )


@dataclass(frozen=True)
class TransferStatus:
    """One observation of a transfer. Byte counts are None when the service does not say."""

    ref: str
    phase: TransferPhase
    bytes_transferred: int | None = None
    total_bytes: int | None = None
    message: str | None = None

    @property
    def percent(self) -> float | None:
        """Progress in [0, 100]: 100 once COMPLETED, None when nothing is known."""
        if self.phase is TransferPhase.COMPLETED:
            return 100.0
        if self.bytes_transferred is None or not self.total_bytes:
            return None
        return min(100.0, 100.0 * self.bytes_transferred / self.total_bytes)


@dataclass(frozen=True)
class StorageEntry:
    """A node in user storage: a container (folder) or a data node (file)."""

    uri: str
    name: str
    is_container: bool
    size: int | None
    modified: datetime | None
    md5: str | None = None


@runtime_checkable
class UserStorage(Protocol):
    """A user's storage at one site."""

    async def ensure_area(self, user: str, path: str) -> str:
        """The URI of container ``path`` (relative, ``/``-separated) in ``user``'s home.

        Missing containers on the way are created; an existing one is fine (idempotent).
        Raises ``SiteNotFound`` if the user has no home, ``PermanentSiteError`` if ``path`` is
        invalid (empty segment, ``.``/``..``) or a data node is in the way.
        """
        ...

    async def place(self, source: str, destination: str) -> str:
        """Start copying ``source`` (a node URI of this service, or an http(s) URL) to the
        node URI ``destination``; returns the transfer reference to store and poll.

        Returns as soon as the service accepted the job; completion is learnt through
        :meth:`transfer_status`, and a transfer the service cannot do (real Cavern cannot
        pull from a URL; quota; unreachable source) ends in phase ERROR there. Calling it
        again starts another transfer (not idempotent), which rewrites the same bytes.
        Raises ``PermanentSiteError`` if the URIs are invalid or the job is refused outright.
        """
        ...

    async def transfer_status(self, ref: str) -> TransferStatus:
        """The current phase and progress of transfer ``ref``.

        A failed transfer is reported (phase ERROR with the service's message), not raised;
        raises ``SiteNotFound`` if the service no longer knows ``ref``.
        """
        ...

    async def cancel_transfer(self, ref: str) -> None:
        """Ask the service to abort transfer ``ref``; a finished transfer stays as it is."""
        ...

    async def listing(self, uri: str) -> list[StorageEntry]:
        """The children of container ``uri`` (all pages), or the data node ``uri`` itself.

        Raises ``SiteNotFound`` if ``uri`` does not exist.
        """
        ...

    async def delete(self, uri: str) -> None:
        """Delete node ``uri`` and, for a container, everything below it.

        Raises ``SiteNotFound`` if it does not exist (callers cleaning up may ignore that) and
        ``PermanentSiteError`` if some nodes could not be deleted.
        """
        ...
