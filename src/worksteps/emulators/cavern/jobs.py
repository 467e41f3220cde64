"""UWS jobs of the emulator: transfers (sync and async) and recursive deletes.

Phases follow UWS: a job is created PENDING, ``PHASE=RUN`` makes it QUEUED, it becomes
EXECUTING once one of ``concurrent_transfers`` slots is free, and ends COMPLETED, ERROR or
ABORTED. Every change sets the job's event, so ``?WAIT=`` polls return at once on change.
Progress (bytes done, bytes expected) is reported inside ``uws:jobInfo`` under the
emulator's own namespace: real Cavern reports none, and clients must treat it as optional.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from .documents import UWS, XLINK, XSI, Transfer, transfer_element
from .errors import VOSpaceFault
from .paths import NodePath

__all__ = ["PROGRESS_NS", "Job", "JobBoard", "Phase", "job_document"]

PROGRESS_NS = "urn:worksteps:cavern-emulator"
_KEEP_FINISHED = 1000


class Phase(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"

    @property
    def terminal(self) -> bool:
        return self in (Phase.COMPLETED, Phase.ERROR, Phase.ABORTED)


JobKind = Literal["transfer", "sync", "delete"]


@dataclass(eq=False)
class Job:
    """One UWS job; ``error`` is the fault text shown by ``/error`` and ``errorSummary``."""

    id: str
    owner: str
    kind: JobKind
    transfer: Transfer | None = None
    target: NodePath | None = None
    created: float = field(default_factory=time.time)
    phase: Phase = Phase.PENDING
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    details: Transfer | None = None
    results: dict[str, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def touch(self) -> None:
        """Wake every ``?WAIT=`` poll of this job."""
        self.changed.set()
        self.changed = asyncio.Event()

    def report(self, done: int, total: int | None) -> None:
        self.bytes_done, self.bytes_total = done, total
        self.touch()


Runner = Callable[[Job], Awaitable[None]]


class JobBoard:
    """All jobs of one service, and the slots that bound how many execute at once."""

    def __init__(self, concurrency: int, runner: Runner) -> None:
        self._jobs: dict[str, Job] = {}
        self._runner = runner
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None

    def create(
        self,
        owner: str,
        kind: JobKind,
        transfer: Transfer | None = None,
        target: NodePath | None = None,
    ) -> Job:
        job = Job(secrets.token_hex(8), owner, kind, transfer, target)
        self._jobs[job.id] = job
        self._forget_old()
        return job

    def get(self, job_id: str, user: str | None) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise VOSpaceFault("NodeNotFound", f"job {job_id}")
        if user != job.owner:
            raise VOSpaceFault("PermissionDenied", f"job {job_id}")
        return job

    def set_phase(self, job: Job, phase: Phase, error: str | None = None) -> None:
        if job.phase.terminal:
            return
        job.phase = phase
        now = time.time()
        if phase is Phase.EXECUTING:
            job.started = now
        if phase.terminal:
            job.ended = now
            job.started = job.started or now
        if error is not None:
            job.error = error
        job.touch()

    async def wait(self, job: Job, seconds: float) -> None:
        """Block up to ``seconds`` while the job is active, returning early on any change."""
        if seconds <= 0 or job.phase.terminal:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.changed.wait(), seconds)

    def run(self, job: Job) -> None:
        if job.phase is not Phase.PENDING:
            return
        self.set_phase(job, Phase.QUEUED)
        job.task = asyncio.get_running_loop().create_task(self._execute(job))

    def abort(self, job: Job) -> None:
        if job.phase.terminal:
            return
        if job.task is not None:
            job.task.cancel()
        self.set_phase(job, Phase.ABORTED)

    def abort_all(self) -> None:
        for job in list(self._jobs.values()):
            self.abort(job)

    def delete(self, job: Job) -> None:
        self.abort(job)
        self._jobs.pop(job.id, None)

    async def _execute(self, job: Job) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._concurrency)
        async with self._slots:
            if job.phase is not Phase.QUEUED:
                return
            self.set_phase(job, Phase.EXECUTING)
            try:
                await self._runner(job)
            except VOSpaceFault as fault:
                self.set_phase(job, Phase.ERROR, fault.text)
            except asyncio.CancelledError:
                self.set_phase(job, Phase.ABORTED)
                return
            except Exception as exc:  # the job fails, the service keeps running
                self.set_phase(job, Phase.ERROR, f"InternalFault: {exc}")
            else:
                self.set_phase(job, Phase.COMPLETED)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.phase.terminal]
        for job in sorted(finished, key=lambda j: j.created)[:-_KEEP_FINISHED]:
            self._jobs.pop(job.id, None)


def _time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def job_document(job: Job, job_url: str) -> bytes:
    """The UWS 1.0 job document (``uws:job``) of ``job``, which lives at ``job_url``."""
    root = ET.Element(
        "uws:job",
        {"xmlns:uws": UWS, "xmlns:xlink": XLINK, "xmlns:xsi": XSI, "xmlns:emu": PROGRESS_NS},
    )
    nil = {"xsi:nil": "true"}

    def add(name: str, text: str | None) -> ET.Element:
        element = ET.SubElement(root, f"uws:{name}", {} if text is not None else nil)
        element.text = text
        return element

    add("jobId", job.id)
    add("runId", None)
    add("ownerId", job.owner)
    add("phase", job.phase.value)
    add("quote", None)
    add("creationTime", _time(job.created))
    add("startTime", _time(job.started))
    add("endTime", _time(job.ended))
    add("executionDuration", "0")
    add("destruction", _time(job.created + 7 * 86400))
    add("parameters", "")
    results = add("results", "")
    for result_id, href in job.results.items():
        ET.SubElement(results, "uws:result", {"id": result_id, "xlink:href": href})
    if job.error is not None:
        summary = ET.SubElement(root, "uws:errorSummary", {"type": "fatal", "hasDetail": "true"})
        ET.SubElement(summary, "uws:message").text = job.error
    info = ET.SubElement(root, "uws:jobInfo")
    if job.transfer is not None:
        info.append(transfer_element(job.details or job.transfer))
    progress = {"bytes": str(job.bytes_done)}
    if job.bytes_total is not None:
        progress["total"] = str(job.bytes_total)
    ET.SubElement(info, "emu:progress", progress)
    out: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return out
