"""One emulated session and how Skaha v1 renders it: the JSON document, events table, URLs.

Statuses are exactly the ones the real service emits (``Pending``, ``Running``,
``Terminating``, ``Completed``, ``Failed``); the client-side aliases ``Succeeded`` and
``Error`` never appear. Times are UTC instants with second precision and a ``Z``, as
Kubernetes prints them. Fields the real service leaves out until known (``startTime``,
``expiryTime``) are left out here too, not sent as null.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ACTIVE",
    "COMPLETED",
    "FAILED",
    "PENDING",
    "RUNNING",
    "TERMINATING",
    "SessionEvent",
    "SessionRecord",
    "connect_url",
    "events_table",
    "format_instant",
    "public_document",
    "session_document",
]

PENDING = "Pending"
RUNNING = "Running"
TERMINATING = "Terminating"
COMPLETED = "Completed"
FAILED = "Failed"
ACTIVE = frozenset({PENDING, RUNNING})

_NONE = "<none>"


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SessionEvent:
    """A Kubernetes-style event of the session's job or pod."""

    type: str  # Normal | Warning
    reason: str
    message: str
    first: datetime
    last: datetime


@dataclass(eq=False)
class SessionRecord:
    """Everything the emulator knows about one session; mutated only by the supervisor."""

    id: str
    user: str
    name: str
    kind: str
    image: str
    request_cores: int
    limit_cores: int
    request_ram: int
    limit_ram: int
    gpus: int
    fixed: bool
    command: list[str] | None
    env: dict[str, str]
    created: datetime
    connect_url: str = ""
    port: int | None = None
    status: str = PENDING
    start_time: datetime | None = None
    expiry_time: datetime | None = None
    events: list[SessionEvent] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    reaped: bool = False
    """True once the process and everything in its group have been stopped."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the expiry changed or the session must end; the lifecycle re-checks then."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def record_event(self, kind: str, reason: str, message: str) -> None:
        """Append an event; a repeat of the latest one only moves its last-seen time."""
        now = datetime.now(UTC)
        latest = self.events[-1] if self.events else None
        if latest and (latest.type, latest.reason, latest.message) == (kind, reason, message):
            latest.last = now
            return
        self.events.append(SessionEvent(kind, reason, message, now, now))

    def finish(self, status: str, kind: str, reason: str, message: str) -> bool:
        """Move an active session to an end status with its event; False if already ended."""
        if not self.active:
            return False
        self.status = status
        self.record_event(kind, reason, message)
        return True


def connect_url(
    kind: str, session_id: str, *, sessions_host: str, notebook_base: str, home_path: str
) -> str:
    """The connectURL of a session, in the path formats of Skaha's SessionURLBuilder.

    ``sessions_host`` is the scheme and authority the session pages are served from;
    ``notebook_base`` is the same for the session's own JupyterLab server.
    """
    if kind == "notebook":
        return (
            f"{notebook_base}/session/notebook/{session_id}/lab/tree/{home_path}?token={session_id}"
        )
    if kind == "desktop":
        return (
            f"{sessions_host}/session/desktop/{session_id}/"
            f"?password={session_id}&path=session/desktop/{session_id}/"
        )
    if kind == "carta":
        return f"{sessions_host}/session/carta/{session_id}/"
    if kind == "contributed":
        return f"{sessions_host}/session/contrib/{session_id}/"
    if kind == "firefly":
        return f"{sessions_host}/session/firefly/{session_id}/firefly/"
    return ""


def session_document(record: SessionRecord, run_as_uid: int) -> dict[str, Any]:
    """The JSON object of ``GET /v1/session/{id}`` (and each item of the listing)."""
    doc: dict[str, Any] = {
        "id": record.id,
        "userid": record.user,
        "runAsUID": str(run_as_uid),
        "runAsGID": str(run_as_uid),
        "supplementalGroups": [],
        "appid": _NONE,
        "image": record.image,
        "type": record.kind,
        "status": record.status,
        "name": record.name,
    }
    if record.start_time is not None:
        doc["startTime"] = format_instant(record.start_time)
    if record.expiry_time is not None:
        doc["expiryTime"] = format_instant(record.expiry_time)
    doc.update(
        {
            "connectURL": record.connect_url,
            "requestedRAM": f"{record.request_ram}G",
            "requestedCPUCores": str(record.request_cores),
            "requestedGPUCores": str(record.gpus),
            "ramInUse": _NONE,
            "gpuRAMInUse": _NONE,
            "cpuCoresInUse": _NONE,
            "gpuUtilization": _NONE,
            "isFixedResources": record.fixed,
        }
    )
    return doc


def public_document(record: SessionRecord) -> dict[str, Any]:
    """One item of ``view=all``: what every user may see of anyone's session."""
    doc: dict[str, Any] = {"userid": record.user, "type": record.kind, "status": record.status}
    if record.start_time is not None:
        doc["startTime"] = format_instant(record.start_time)
    return doc


def events_table(record: SessionRecord) -> str:
    """``view=events``: kubectl custom-columns text, or ``<none>`` when there are none."""
    if not record.events:
        return _NONE + "\n"
    header = ("TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME")
    rows = [header] + [
        (e.type, e.reason, e.message, format_instant(e.first), format_instant(e.last))
        for e in record.events
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("   ".join([*cells, row[-1]]))
    return "\n".join(lines) + "\n"
