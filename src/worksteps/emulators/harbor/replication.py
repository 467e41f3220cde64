"""Pull-mode replication: policies that select upstream images and executions that copy them.

Starting an execution selects the configured upstream images matching the policy's filters
and creates one task per image. Each task fixes, at start, when each blob and finally the
manifest will land (config blob first, then layers in order, at ``pull_rate`` or the
policy's ``speed`` if lower). States are derived from those instants on every read:
``Pending`` before the task's start-up delay, ``InProgress``, then ``Succeed``; an image
configured with ``replication_fails`` stops half-way as ``Failed``; stopping an execution
cuts every arrival after that instant (``Stopped``).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worksteps.emulators.harbor.config import ProjectSpec
from worksteps.emulators.harbor.state import Arrival, RegistryState, StoredImage

__all__ = ["Execution", "FilterIn", "Policy", "PolicyIn", "Replication", "Task"]

UPSTREAM_ID = 1


class FilterIn(BaseModel):
    type: str
    value: Any = None
    decoration: str = "matches"

    def accepts(self, image: StoredImage) -> bool:
        value = str(self.value or "")
        if self.type == "name":
            hit = fnmatch.fnmatchcase(image.name, value)
        elif self.type == "tag":
            hit = fnmatch.fnmatchcase(image.tag, value)
        elif self.type == "resource":
            hit = value in ("", "image", "artifact")
        elif self.type == "label":
            hit = False  # the emulated images carry no labels
        else:
            hit = True
        return hit != (self.decoration == "excludes")


class RegistryRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int


class PolicyIn(BaseModel):
    """The body of ``POST /replication/policies`` (fields Harbor accepts; others ignored)."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    src_registry: RegistryRef | None = None
    dest_registry: RegistryRef | None = None
    dest_namespace: str | None = None
    dest_namespace_replace_count: int = -1
    filters: list[FilterIn] = Field(default_factory=list)
    trigger: dict[str, Any] = Field(default_factory=lambda: {"type": "manual"})
    enabled: bool = True
    override: bool = True
    replicate_deletion: bool = False
    speed: int | None = Field(None, description="KB/s per task; 0 or None: unlimited.")


@dataclass
class Policy:
    id: int
    spec: PolicyIn
    created: float

    def destination(self, name: str) -> str:
        """Where ``project/repo`` lands: Harbor's namespace replacement rule."""
        namespace = self.spec.dest_namespace
        if not namespace:
            return name
        parts = name.split("/")
        count = self.spec.dest_namespace_replace_count
        keep = parts[1:] if count < 0 else parts[min(count, len(parts) - 1) :]
        return "/".join([namespace, *keep])


@dataclass
class Task:
    id: int
    execution_id: int
    source: StoredImage
    target: StoredImage
    arrival: Arrival

    def status(self, now: float, startup: float) -> str:
        arrival = self.arrival
        if arrival.landed(arrival.manifest_at, now):
            return "Succeed"
        if arrival.failed_at is not None and arrival.landed(arrival.failed_at, now):
            return "Failed"
        if arrival.cutoff <= now:
            return "Stopped"
        return "Pending" if now < arrival.started + startup else "InProgress"

    def end_time(self, now: float, startup: float) -> float | None:
        status = self.status(now, startup)
        if status == "Succeed":
            return self.arrival.manifest_at
        if status == "Failed":
            return self.arrival.failed_at
        if status == "Stopped":
            return self.arrival.cutoff
        return None


@dataclass
class Execution:
    id: int
    policy_id: int
    started: float
    tasks: list[Task] = field(default_factory=list)
    stopped_at: float | None = None

    def counts(self, now: float, startup: float) -> dict[str, int]:
        statuses = [task.status(now, startup) for task in self.tasks]
        return {
            "total": len(statuses),
            "succeed": statuses.count("Succeed"),
            "failed": statuses.count("Failed"),
            "stopped": statuses.count("Stopped"),
            "in_progress": statuses.count("InProgress") + statuses.count("Pending"),
        }

    def status(self, now: float, startup: float) -> str:
        counts = self.counts(now, startup)
        if counts["in_progress"]:
            return "InProgress"
        if counts["failed"]:
            return "Failed"
        if counts["stopped"]:
            return "Stopped"
        return "Succeed"

    def end_time(self, now: float, startup: float) -> float | None:
        if self.status(now, startup) == "InProgress":
            return None
        ends = [task.end_time(now, startup) for task in self.tasks]
        return max((t for t in ends if t is not None), default=self.started)


class Replication:
    """Policies and executions of one emulated Harbor."""

    def __init__(self, state: RegistryState) -> None:
        self.state = state
        self.policies: dict[int, Policy] = {}
        self.executions: dict[int, Execution] = {}
        self._task_ids = 0

    @property
    def startup(self) -> float:
        return self.state.config.replication_startup

    def add_policy(self, spec: PolicyIn) -> Policy:
        """Raises ``KeyError`` for a duplicate name, ``LookupError`` for an unknown registry."""
        if any(p.spec.name == spec.name for p in self.policies.values()):
            raise KeyError(spec.name)
        if self.state.config.upstream is None or spec.src_registry is None:
            raise LookupError("only pull-mode replication from the upstream registry is emulated")
        if spec.src_registry.id != UPSTREAM_ID:
            raise LookupError(f"registry {spec.src_registry.id} not found")
        policy = Policy(max(self.policies, default=0) + 1, spec, self.state.clock())
        self.policies[policy.id] = policy
        return policy

    def start(self, policy: Policy) -> Execution:
        now = self.state.clock()
        execution = Execution(max(self.executions, default=0) + 1, policy.id, now)
        sources = [
            image
            for image in list(self.state.images.values())
            if image.content.spec.name == image.name  # upstream copies, not earlier targets
            and image.tag == image.content.spec.tag
            and all(f.accepts(image) for f in policy.spec.filters)
        ]
        for source in sources:
            target_name = policy.destination(source.name)
            project = target_name.split("/", 1)[0]
            if project not in self.state.projects:
                self.state.add_project(ProjectSpec(name=project, public=False))
            target = self.state.add_image(target_name, source.tag, source.content)
            self._task_ids += 1
            arrival = self._schedule(execution.id, now, target, policy)
            target.arrivals.append(arrival)
            execution.tasks.append(Task(self._task_ids, execution.id, source, target, arrival))
        self.executions[execution.id] = execution
        return execution

    def _schedule(
        self, execution_id: int, now: float, target: StoredImage, policy: Policy
    ) -> Arrival:
        content = target.content
        if target.present(now):
            times = {blob.digest: now for blob in content.blobs}
            return Arrival(execution_id, now, times, now)
        rate = self.state.config.pull_rate
        if policy.spec.speed:
            rate = min(rate, policy.spec.speed * 1024.0)
        instant = now + self.startup
        times = {}
        for blob in content.blobs:
            instant += blob.size / rate
            times[blob.digest] = instant
        manifest_at = instant + len(content.manifest) / rate
        if not content.spec.replication_fails:
            return Arrival(execution_id, now, times, manifest_at)
        landed = 1 + math.ceil(len(content.layers) / 2)  # config and half the layers
        kept = dict(list(times.items())[:landed])
        return Arrival(execution_id, now, kept, None, failed_at=max(kept.values()))

    def stop(self, execution: Execution) -> None:
        now = self.state.clock()
        if execution.status(now, self.startup) != "InProgress":
            return
        execution.stopped_at = now
        for task in execution.tasks:
            task.arrival.cutoff = min(task.arrival.cutoff, now)
