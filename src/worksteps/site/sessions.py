"""The session service of a site (Skaha): start an interactive or batch session and follow it.

A :class:`SessionService` reports facts: the site's own session status, its connect URL, its
times. It never decides what they mean for a workstep (the broker's lifecycle does), never
retries (the engine does) and never waits for a session to become ready (the engine polls).

Errors, all from :mod:`worksteps.site.errors`:

- :class:`~worksteps.site.errors.TransientSiteError`: 5xx, 429, timeouts, refused or reset
  connections. Repeat later. For ``launch`` the request may or may not have created a
  session: look for it with :meth:`SessionService.find` before launching again.
- :class:`~worksteps.site.errors.PermanentSiteError`: the site refused the request (4xx):
  a bad parameter, the user's session quota, an untrusted image, no permission. Its
  ``message`` is the site's own explanation, meant for people.
- :class:`~worksteps.site.errors.SiteNotFound`: the session does not exist (any more).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol, runtime_checkable

__all__ = ["SessionInfo", "SessionKind", "SessionService", "SessionSpec", "SessionStatus"]

_NAME = re.compile(r"[A-Za-z0-9-]+")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SessionKind(StrEnum):
    """Session types a site can start (Skaha's ``type``)."""

    NOTEBOOK = "notebook"
    CARTA = "carta"
    DESKTOP = "desktop"
    HEADLESS = "headless"
    CONTRIBUTED = "contributed"
    FIREFLY = "firefly"


class SessionStatus(StrEnum):
    """What the site says a session is doing (the statuses Skaha emits)."""

    PENDING = "Pending"
    RUNNING = "Running"
    TERMINATING = "Terminating"
    COMPLETED = "Completed"
    FAILED = "Failed"


@dataclass(frozen=True)
class SessionSpec:
    """What to start. Checked on construction (ValueError) against what Skaha can express.

    - ``name``: letters, digits and '-' only; Skaha reports it back in lower case.
    - ``cores``, ``ram`` (GiB): both None asks for a flexible session (the site's default
      request and limit); a value must be one of the site's context options.
    - ``cmd``, ``args``, ``env``: headless sessions only. Skaha splits ``args`` on spaces, so
      no argument may contain whitespace, and drops env values that contain '='.
    """

    name: str
    kind: SessionKind
    image: str
    cores: int | None = None
    ram: int | None = None
    gpus: int | None = None
    cmd: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SessionKind(self.kind))
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"session name {self.name!r}: only letters, digits and '-'")
        for label, value in (("cores", self.cores), ("ram", self.ram), ("gpus", self.gpus)):
            if value is not None and value < 1:
                raise ValueError(f"{label} must be at least 1, not {value}")
        if self.kind is not SessionKind.HEADLESS and (self.cmd or self.args or self.env):
            raise ValueError("cmd, args and env are allowed only for headless sessions")
        if self.cmd is not None and (not self.cmd or any(c.isspace() for c in self.cmd)):
            raise ValueError(f"cmd {self.cmd!r} must be one word (an executable)")
        if any(not arg or any(c.isspace() for c in arg) for arg in self.args):
            raise ValueError("Skaha splits args on spaces: no argument may be empty or hold one")
        for key, text in self.env.items():
            if not _ENV_KEY.fullmatch(key) or "=" in text:
                raise ValueError(f"env {key}={text!r}: Skaha drops keys or values like this")


@dataclass(frozen=True)
class SessionInfo:
    """A session as the site reports it at one moment.

    ``connect_url`` is None while the site gives none (headless sessions never have one) and
    is only usable once ``status`` is RUNNING. ``start_time`` and ``expiry_time`` are None
    until the session starts. ``message`` is the site's latest event while the session is
    Pending or Failed (e.g. an image pull, or why it failed), else None.
    """

    session_id: str
    name: str
    kind: SessionKind
    image: str
    status: SessionStatus
    connect_url: str | None = None
    start_time: datetime | None = None
    expiry_time: datetime | None = None
    message: str | None = None


@runtime_checkable
class SessionService(Protocol):
    """A site's session service, used by one user (the credential the adapter holds)."""

    async def launch(self, spec: SessionSpec) -> str:
        """Ask the site to start a session; returns its id at once (it starts Pending).

        Raises PermanentSiteError when refused (quota reached, bad image or resources),
        TransientSiteError when the site could not be reached or failed.
        """
        ...

    async def get(self, session_id: str) -> SessionInfo:
        """The session's current status, connect URL and times. SiteNotFound if unknown."""
        ...

    async def find(self, name: str) -> list[SessionInfo]:
        """The user's sessions called ``name`` (case-insensitive), oldest first.

        Lets a caller that lost the answer to ``launch`` learn whether it was created.
        """
        ...

    async def logs(self, session_id: str) -> str:
        """The session's output so far (stdout and stderr). SiteNotFound if unknown."""
        ...

    async def renew(self, session_id: str) -> datetime | None:
        """Push the session's expiry to the site's full lifetime from now; returns it.

        None when the session has not started yet (its lifetime counts from its start).
        Skaha refuses to renew a session that is unknown or no longer active with a 400:
        PermanentSiteError (not SiteNotFound).
        """
        ...

    async def delete(self, session_id: str) -> None:
        """Stop the session and free its resources. SiteNotFound if already gone."""
        ...
