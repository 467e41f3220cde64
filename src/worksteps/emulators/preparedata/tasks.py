"""PrepareData tasks: replicate DIDs to the site's RSE (a Rucio rule), then copy them home.

A task's whole course is fixed when it is submitted, in the same time-based way as Rucio
rules: each file reaches the RSE when its lock completes, then is copied into
``<home>/<user>/<destination>/`` at ``copy_bandwidth``, one file after another, no earlier
than ``queue_seconds`` after submission. Status and progress are computed from those times on
every request, and a file copy is written to disk the first time a request sees it complete.

Problems with the data itself (an unknown DID, a source path that is not the DID's replica)
do not reject the request: as in an asynchronous worker queue, the task is accepted and then
reports failure.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from worksteps.emulators.preparedata.config import PrepareDataConfig
from worksteps.emulators.rucio.catalogue import RucioCatalogue
from worksteps.emulators.rucio.content import FileContent, deterministic_path, write_content
from worksteps.emulators.rucio.rules import RucioError

__all__ = ["Progress", "Task", "TaskBook", "clean_destination"]


def clean_destination(destination: str) -> str:
    """A destination as a safe relative path (``./x/y`` → ``x/y``); ValueError otherwise."""
    path = PurePosixPath(destination)
    parts = [p for p in path.parts if p not in (".", "")]
    if path.is_absolute() or not parts or ".." in parts:
        raise ValueError(f"destination {destination!r} must be a relative path inside the home")
    return "/".join(parts)


@dataclass
class Task:
    id: str
    user: str
    created_at: float
    destination: str
    files: list[FileContent] = field(default_factory=list)
    rule_ids: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Progress:
    status: str
    bytes_done: int
    bytes_total: int
    files_done: int
    error: str | None


class TaskBook:
    """The tasks of one PrepareData service and their course over time."""

    def __init__(self, config: PrepareDataConfig, catalogue: RucioCatalogue) -> None:
        catalogue.rse(config.rse)
        self.config = config
        self.catalogue = catalogue
        self.tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def submit(self, user: str, items: list[tuple[str, str, str]]) -> Task:
        """Accept a task for ``[(did, source_path, destination), …]``.

        The caller has checked the shape and that all items share one valid destination.
        """
        now = self.catalogue.clock()
        task = Task(uuid.uuid4().hex, user, now, clean_destination(items[0][2]))
        try:
            for did, source_path, _ in items:
                task.rule_ids.append(self._rule_for(did, source_path, now))
                scope, _, name = did.partition(":")
                new = [f for f in self.catalogue.did(scope, name).files if f not in task.files]
                task.files.extend(new)
        except (ValueError, RucioError) as exc:
            task.error = exc.message if isinstance(exc, RucioError) else str(exc)
        with self._lock:
            self.tasks[task.id] = task
        return task

    def get(self, task_id: str, user: str) -> Task | None:
        task = self.tasks.get(task_id)
        return task if task is not None and task.user == user else None

    def progress(self, task: Task) -> Progress:
        """Where ``task`` is now; writes the files whose copy has completed."""
        names = self.config.statuses
        now = self.catalogue.settle()
        total = sum(f.size for f in task.files)
        if task.error:
            return Progress(names.failed, 0, total, 0, task.error)
        cursor = task.created_at + self.config.queue_seconds
        done_bytes, finished = 0, list[FileContent]()
        for content in sorted(task.files, key=lambda f: (f.scope, f.name)):
            arrival, error = self._arrival(content, now)
            if error is not None:
                return Progress(names.failed, done_bytes, total, len(finished), error)
            start = max(cursor, arrival)
            cursor = start + content.size / self.config.copy_bandwidth
            if cursor <= now:
                done_bytes += content.size
                finished.append(content)
            elif start < now:
                done_bytes += int((now - start) * self.config.copy_bandwidth)
        for content in finished:
            write_content(content, self.file_path(task, content))
        if len(finished) == len(task.files):
            status = names.done
        elif now < task.created_at + self.config.queue_seconds:
            status = names.pending
        else:
            status = names.active
        return Progress(status, done_bytes, total, len(finished), None)

    def directory(self, task: Task) -> Path:
        return self.config.home_root / task.user / task.destination

    def file_path(self, task: Task, content: FileContent) -> Path:
        return self.directory(task) / PurePosixPath(content.name).name

    def _rule_for(self, did: str, source_path: str, now: float) -> str:
        scope, sep, name = did.partition(":")
        if not sep or not scope or not name:
            raise ValueError(f"{did!r} is not a DID (scope:name)")
        info = self.catalogue.did(scope, name)
        if (
            source_path
            and info.did_type == "FILE"
            and source_path != deterministic_path(scope, name)
        ):
            raise ValueError(
                f"{source_path!r} is not the replica path of {did} at {self.config.rse}"
            )
        start = now + self.config.queue_seconds
        try:
            return self.catalogue.add_rules(
                self.config.account,
                [(scope, name)],
                1,
                self.config.rse,
                lifetime=self.config.rule_lifetime,
                options={"activity": "PrepareData", "comment": "preparedata"},
                start_at=start,
            )[0]
        except RucioError as exc:
            if exc.exception_class != "DuplicateRule":
                raise
        for rule in self.catalogue.rules_for(scope, name):
            if (rule.account, rule.rse_expression) == (self.config.account, self.config.rse):
                return rule.id
        raise RucioError("DuplicateRule", f"cannot find the existing rule for {did}", 409)

    def _arrival(self, content: FileContent, now: float) -> tuple[float, str | None]:
        """When the file is complete at the site's RSE, or why it never will be."""
        rse = self.config.rse
        lock = self.catalogue.find_lock(self.config.account, content.scope, content.name, rse)
        if lock is not None:
            return lock.done_at, lock.error if lock.state(now) == "STUCK" else None
        if rse in self.catalogue.available(content.scope, content.name, now):
            return 0.0, None
        return now, f"the rule bringing {content.scope}:{content.name} to {rse} was removed"
