"""Data staging: bring a workstep's data (Rucio DIDs) to the site that will run the session.

A ``DataStaging`` adapter reports facts only. It never retries, never waits for completion and
never decides what a failure means for a session: the broker's engine polls :meth:`status`
with its own back-off, and owns retries and deadlines. Every method raises only
:mod:`worksteps.site.errors`:

    TransientSiteError   the service is unreachable, overloaded (5xx, 429) or timed out
    PermanentSiteError   the request is refused (bad DID, bad destination, forbidden, quota)
    SiteNotFound         the DID, or the staging reference, is unknown to the service

Implementations: :class:`worksteps.site.rucio.RucioStaging` (a replication rule to the site's
RSE) and :class:`worksteps.site.preparedata.PrepareDataStaging` (CANSRC PrepareData, which
also copies the data into the user's storage).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "DID",
    "DataStaging",
    "InvalidDID",
    "Replica",
    "StageRequest",
    "StageState",
    "StageStatus",
]

_SCOPE = re.compile(r"^[A-Za-z0-9_.\-]{1,25}$")
_NAME = re.compile(r"^[/A-Za-z0-9][/A-Za-z0-9._\-]{0,249}$")


class InvalidDID(ValueError):
    """A string is not a Rucio data identifier; the message says why."""


@dataclass(frozen=True, order=True)
class DID:
    """A Rucio data identifier ``scope:name`` (Rucio's generic naming schema)."""

    scope: str
    name: str

    def __post_init__(self) -> None:
        if not _SCOPE.match(self.scope):
            raise InvalidDID(
                f"scope {self.scope!r} must be 1-25 characters of letters, digits, '_', '-', '.'"
            )
        if not _NAME.match(self.name):
            raise InvalidDID(
                f"name {self.name!r} must be 1-250 characters of letters, digits, '/', '.', "
                "'_', '-', starting with a letter, digit or '/'"
            )

    @classmethod
    def parse(cls, text: str) -> DID:
        """``"scope:name"`` → DID. The first ``:`` separates scope from name."""
        value = text.strip()
        scope, sep, name = value.partition(":")
        if not sep:
            raise InvalidDID(f"{text!r} is not a DID: expected 'scope:name'")
        if not scope:
            raise InvalidDID(f"{text!r} has an empty scope: expected 'scope:name'")
        if not name:
            raise InvalidDID(f"{text!r} has an empty name: expected 'scope:name'")
        return cls(scope, name)

    def __str__(self) -> str:
        return f"{self.scope}:{self.name}"


@dataclass(frozen=True)
class Replica:
    """One complete copy of one file at one storage element."""

    did: DID
    rse: str
    bytes: int
    url: str | None = None


@dataclass(frozen=True)
class StageRequest:
    """What to stage.

    ``destination`` names this staging for the user: a relative directory (``ws-1234/input``)
    under which services that copy data into the user's storage place it, and a label for
    services that only replicate (Rucio puts it in the rule's comment). Where the data goes
    physically (the site's RSE) is configuration of the adapter, not of the request.
    """

    dids: tuple[DID, ...]
    destination: str
    lifetime: int | None = None

    def __post_init__(self) -> None:
        if not self.dids:
            raise ValueError("a stage request needs at least one DID")
        if len(set(self.dids)) != len(self.dids):
            raise ValueError("a stage request must not repeat a DID")
        parts = self.destination.replace("\\", "/").split("/")
        if not self.destination or self.destination.startswith("/") or ".." in parts:
            raise ValueError(f"destination {self.destination!r} must be a relative path")
        if self.lifetime is not None and self.lifetime <= 0:
            raise ValueError("lifetime must be a positive number of seconds")


class StageState(enum.StrEnum):
    PENDING = "PENDING"  # accepted, nothing moving yet (queued, waiting for approval)
    ACTIVE = "ACTIVE"  # data is moving
    DONE = "DONE"  # all data is where it was asked to be
    FAILED = "FAILED"  # the service reports failure (Rucio STUCK may still recover later)


@dataclass(frozen=True)
class StageStatus:
    """A staging's state as last reported by the service.

    Byte counts are ``None`` when the service does not report them. ``location`` says where
    the data is once DONE (the RSE, or the directory in the user's storage); ``urls`` lists the
    staged files' URLs when the service tells them.
    """

    state: StageState
    bytes_done: int | None = None
    bytes_total: int | None = None
    message: str = ""
    location: str | None = None
    urls: tuple[str, ...] = ()

    @property
    def percent(self) -> float | None:
        """Progress in percent: 100 when DONE, from the byte counts otherwise, else unknown."""
        if self.state is StageState.DONE:
            return 100.0
        if self.bytes_done is None or not self.bytes_total:
            return None
        return min(100.0, 100.0 * self.bytes_done / self.bytes_total)


@runtime_checkable
class DataStaging(Protocol):
    """A site's data-staging service."""

    async def replicas(self, did: DID) -> list[Replica]:
        """Complete replicas of every file of ``did`` (a file or a dataset), at every RSE.

        Used to estimate staging time honestly (is the data local already; how many bytes
        must move). Raises ``SiteNotFound`` if the DID is unknown.
        """
        ...

    async def stage(self, request: StageRequest) -> str:
        """Start staging and return the service's reference (rule ids, task id).

        The caller stores the reference before it polls, so a restarted broker resumes the
        same staging. Submitting an identical request again is safe: adapters whose service
        refuses duplicates (Rucio) return the reference of the existing staging instead.
        Raises ``SiteNotFound`` for an unknown DID, ``PermanentSiteError`` if refused.
        """
        ...

    async def find(self, request: StageRequest) -> str | None:
        """The reference of a staging of ``request`` already made, else ``None``.

        Lets a restarted caller recover a submission whose answer it never stored without
        submitting again. Services that cannot be searched answer ``None``.
        """
        ...

    async def status(self, ref: str) -> StageStatus:
        """The current state of the staging ``ref``; ``SiteNotFound`` if it is unknown."""
        ...

    async def cancel(self, ref: str) -> bool:
        """Stop the staging ``ref`` and release what it holds.

        Idempotent: an unknown or already cancelled reference is not an error. Returns
        ``False`` when the service offers no way to cancel (the staging runs to its end and
        expires with the service's own lifetime).
        """
        ...
