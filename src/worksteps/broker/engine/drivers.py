"""One driver per step kind: the external call that starts a step, the look-up that recovers
a submission whose answer was lost, and the poll that reports facts.

Drivers only talk to the site services and report :class:`Outcome` facts or raise
``worksteps.site.errors``; the worker decides what those mean for the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from worksteps.site.errors import PermanentSiteError, SiteNotFound
from worksteps.site.images import ImageRef, PullState
from worksteps.site.services import SiteServices
from worksteps.site.sessions import SessionKind, SessionSpec, SessionStatus
from worksteps.site.staging import DID, StageRequest, StageState
from worksteps.site.storage import TransferPhase

__all__ = ["DRIVERS", "Driver", "Outcome", "StepView"]


@dataclass(frozen=True)
class StepView:
    """What a driver may know of a step: its parameters, reference and its inputs' results."""

    session: str
    key: str
    kind: str
    params: Mapping[str, Any]
    ref: str | None = None
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    done: bool
    bytes_done: int | None = None
    bytes_total: int | None = None
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)


class Driver(Protocol):
    repeatable: bool
    """A second submit is harmless (it finds or reuses what the first made). When it is not, a
    submit whose answer was lost is looked for (:meth:`recover`) only once the service has had
    time to process it: see :attr:`~worksteps.broker.settings.EngineSettings.settle`."""

    settles_at_submit: bool
    """Poll at once after submitting: the operation is usually done by then (an area that
    exists, an image already at the site), so waiting ``poll_min`` would only add latency."""

    async def submit(self, services: SiteServices, step: StepView) -> str:
        """Start the external operation; return its reference."""

    async def recover(self, services: SiteServices, step: StepView) -> str | None:
        """The reference of an operation submitted before a crash, if it exists."""

    async def poll(self, services: SiteServices, step: StepView) -> Outcome:
        """How far the operation is; raises PermanentSiteError when it failed."""

    async def cancel(self, services: SiteServices, step: StepView) -> None:
        """Stop the operation, best effort."""


def _input(step: StepView, key: str) -> Mapping[str, Any]:
    if key not in step.inputs:
        raise PermanentSiteError("engine", step.key, f"input {key!r} is not ready")
    return step.inputs[key]


class AreaDriver:
    """The user's storage area for this session (idempotent: ensure, not create)."""

    repeatable = True
    settles_at_submit = True

    async def submit(self, services: SiteServices, step: StepView) -> str:
        return await services.storage.ensure_area(
            str(step.params["user"]), str(step.params["path"])
        )

    async def recover(self, services: SiteServices, step: StepView) -> str | None:
        return await self.submit(services, step)

    async def poll(self, services: SiteServices, step: StepView) -> Outcome:
        return Outcome(True, result={"uri": step.ref})

    async def cancel(self, services: SiteServices, step: StepView) -> None:
        return None


class StageDriver:
    """A Rucio DID replicated to the site's storage element (a rule; resubmission finds it)."""

    repeatable = True
    settles_at_submit = False

    def _request(self, step: StepView) -> StageRequest:
        did = DID(str(step.params["scope"]), str(step.params["name"]))
        return StageRequest(dids=(did,), destination=str(step.params["destination"]))

    async def submit(self, services: SiteServices, step: StepView) -> str:
        return await services.staging.stage(self._request(step))

    async def recover(self, services: SiteServices, step: StepView) -> str | None:
        return await services.staging.find(self._request(step))

    async def poll(self, services: SiteServices, step: StepView) -> Outcome:
        assert step.ref is not None
        status = await services.staging.status(step.ref)
        if status.state is StageState.FAILED:
            raise PermanentSiteError("rucio", "rule", status.message or "replication failed")
        done = status.state is StageState.DONE
        return Outcome(
            done,
            status.bytes_done,
            status.bytes_total,
            status.message,
            {"urls": list(status.urls), "location": status.location} if done else {},
        )

    async def cancel(self, services: SiteServices, step: StepView) -> None:
        if step.ref:
            await services.staging.cancel(step.ref)


class PlaceDriver:
    """Data copied into the user's area from a URL (or from a staged replica's URL)."""

    repeatable = True
    settles_at_submit = False

    def _source(self, step: StepView) -> str:
        if "source" in step.params:
            return str(step.params["source"])
        urls = _input(step, str(step.params["source_step"])).get("urls") or []
        if not urls:
            raise PermanentSiteError("rucio", "replicas", "the staged data has no access URL")
        return str(urls[0])

    def _destination(self, step: StepView) -> str:
        area = str(_input(step, "area")["uri"]).rstrip("/")
        return f"{area}/{step.params['file']}"

    async def submit(self, services: SiteServices, step: StepView) -> str:
        return await services.storage.place(self._source(step), self._destination(step))

    async def recover(self, services: SiteServices, step: StepView) -> str | None:
        return None  # transfers cannot be looked up: submit again (it rewrites the same file)

    async def poll(self, services: SiteServices, step: StepView) -> Outcome:
        assert step.ref is not None
        status = await services.storage.transfer_status(step.ref)
        if status.phase in (TransferPhase.ERROR, TransferPhase.ABORTED):
            raise PermanentSiteError("cavern", "transfer", status.message or status.phase.value)
        done = status.phase is TransferPhase.COMPLETED
        return Outcome(
            done,
            status.bytes_transferred,
            status.total_bytes,
            status.message or "",
            {"path": self._destination(step)} if done else {},
        )

    async def cancel(self, services: SiteServices, step: StepView) -> None:
        if step.ref:
            await services.storage.cancel_transfer(step.ref)


class ImageDriver:
    """The container image present at the site's registry (replicated when missing)."""

    repeatable = True
    settles_at_submit = True

    async def submit(self, services: SiteServices, step: StepView) -> str:
        ref = await services.images.ensure_available(ImageRef.parse(str(step.params["image"])))
        return ref or "present"

    async def recover(self, services: SiteServices, step: StepView) -> str | None:
        return await self.submit(services, step)  # a running copy is reused, not restarted

    async def poll(self, services: SiteServices, step: StepView) -> Outcome:
        assert step.ref is not None
        if step.ref == "present":
            return Outcome(
                True, message="image already at the site", result=await self._result(services, step)
            )
        status = await services.images.status(step.ref)
        if status.state in (PullState.FAILED, PullState.STOPPED):
            raise PermanentSiteError("harbor", "replication", status.message or status.state)
        done = status.state is PullState.SUCCEEDED
        return Outcome(
            done,
            status.bytes_done,
            status.bytes_total,
            status.message,
            await self._result(services, step) if done else {},
        )

    async def _result(self, services: SiteServices, step: StepView) -> dict[str, Any]:
        """The name the session service knows the image by: found now, while the image step
        has time to spare, rather than by the launch, which bounds the session's start."""
        info = await services.images.inspect(ImageRef.parse(str(step.params["image"])))
        return {"reference": info.reference} if info.reference else {}

    async def cancel(self, services: SiteServices, step: StepView) -> None:
        return None


class LaunchDriver:
    """The Skaha session; its name is derived from the broker's session, so it can be found.

    Skaha has no idempotency key: a launch repeated after a lost answer would run the session
    twice, so it is not repeatable, and stopping deletes every session of that name.
    """

    repeatable = False
    settles_at_submit = False

    def _spec(self, step: StepView) -> SessionSpec:
        p = step.params
        return SessionSpec(
            name=str(p["name"]),
            kind=SessionKind(str(p["kind"])),
            image=str(p["image"]),
            cores=p.get("cores"),
            ram=p.get("ram"),
            cmd=p.get("cmd"),
            args=tuple(str(a) for a in p.get("args") or ()),
            env=dict(p.get("env") or {}),
        )

    async def submit(self, services: SiteServices, step: StepView) -> str:
        spec = self._spec(step)
        # A workstep names its image by any registry (the central one, say); the session
        # must run the copy in this site's Harbor, which the image step made present.
        requested = ImageRef.parse(spec.image)
        reference = step.inputs.get("image", {}).get("reference")
        if reference is None:  # an image step done before it recorded the reference
            reference = (await services.images.inspect(requested)).reference
        if reference is not None:
            site = ImageRef.parse(str(reference))
            local = ImageRef(site.registry, requested.project, requested.repository, requested.tag)
            spec = replace(spec, image=str(local))
        return await services.sessions.launch(spec)

    async def recover(self, services: SiteServices, step: StepView) -> str | None:
        found = await services.sessions.find(str(step.params["name"]))
        return found[0].session_id if found else None

    async def poll(self, services: SiteServices, step: StepView) -> Outcome:
        assert step.ref is not None
        info = await services.sessions.get(step.ref)
        if info.status is SessionStatus.FAILED:
            raise PermanentSiteError("skaha", "session", info.message or "the session failed")
        # An interactive session is ready when it can be reached; a job when it runs.
        reachable = info.connect_url is not None or step.params.get("kind") == "headless"
        ready = info.status is SessionStatus.COMPLETED or (
            info.status is SessionStatus.RUNNING and reachable
        )
        return Outcome(
            ready,
            message=info.message or info.status.value,
            result={
                "session_id": info.session_id,
                "connect_url": info.connect_url,
                "status": info.status.value,
            },
        )

    async def cancel(self, services: SiteServices, step: StepView) -> None:
        found = await services.sessions.find(str(step.params["name"]))
        for session_id in {step.ref, *(s.session_id for s in found)} - {None}:
            with contextlib.suppress(SiteNotFound):
                await services.sessions.delete(str(session_id))


class MonitorDriver:
    """Watches the running session until it ends by itself (a headless job finishing)."""

    repeatable = True
    settles_at_submit = False

    async def submit(self, services: SiteServices, step: StepView) -> str:
        return str(_input(step, "launch")["session_id"])

    async def recover(self, services: SiteServices, step: StepView) -> str | None:
        return await self.submit(services, step)

    async def poll(self, services: SiteServices, step: StepView) -> Outcome:
        assert step.ref is not None
        info = await services.sessions.get(step.ref)
        if info.status is SessionStatus.FAILED:
            raise PermanentSiteError("skaha", "session", info.message or "the session failed")
        return Outcome(
            info.status is SessionStatus.COMPLETED,
            message=info.status.value,
            result={"status": info.status.value},
        )

    async def cancel(self, services: SiteServices, step: StepView) -> None:
        return None


DRIVERS: dict[str, Driver] = {
    "area": AreaDriver(),
    "stage": StageDriver(),
    "place": PlaceDriver(),
    "image": ImageDriver(),
    "launch": LaunchDriver(),
    "monitor": MonitorDriver(),
}
