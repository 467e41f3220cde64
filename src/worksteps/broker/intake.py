"""From an execution request to what the planner needs, or the reasons it cannot be served.

:func:`take_in` fills the site defaults (compute, sizes, duration, start window), links data
to storage (creating ``Storage for [<data>]`` where none is named), resolves volume mounts,
and checks every component. Problems the IVOA spec answers with ``result: NO`` become
:class:`~worksteps.schema.common.Message` items; a request that is invalid as such (a start
window wholly in the past) raises :class:`~worksteps.core.errors.InvalidInput`.

Invariants of a returned :class:`Intake` without refusals: every resource has a unique name,
every reference (data→storage, storage→data, mount→resource) names an existing component,
compute and storage sizes are set with ``min <= max``, and the window starts no earlier than
the site could have the session ready.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from worksteps.broker.planner import Demand, Resources
from worksteps.broker.settings import BrokerSettings
from worksteps.core.errors import FieldError, InvalidInput
from worksteps.schema.common import LifecycleComponent, Message, MessageLevel, Metadata, MinMax
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.isotime import format_duration, format_instant
from worksteps.schema.resources import (
    DockerContainer,
    IvoaDataResource,
    JupyterNotebook,
    RucioDataResource,
    S3DataResource,
    SimpleComputeResource,
    SimpleDataResource,
    SimpleStorageResource,
    SingularityContainer,
    SkaoDataResource,
)

__all__ = ["Intake", "take_in"]

GIB = 1 << 30


@dataclass
class Intake:
    request: ExecutionRequest
    demand: Demand
    window_start: datetime
    window_end: datetime
    duration: timedelta
    preparation: timedelta
    refusals: list[Message] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)


def _refusal(kind: str, text: str, **values: str) -> Message:
    return Message(
        kind=kind,
        level=MessageLevel.ERROR,
        template=text,
        values=values or None,
        message=text.format(**values) if values else text,
    )


def _range(given: MinMax | None, default: int) -> MinMax:
    """``max`` defaults to ``min``; ``min`` to the site default (capped by a given ``max``)."""
    low = given.min if given and given.min is not None else None
    high = given.max if given and given.max is not None else None
    if low is None:
        low = min(default, high) if high is not None else default
    return MinMax(min=low, max=high if high is not None else low)


def _data_bytes(data: object) -> int | None:
    if isinstance(data, SkaoDataResource) and data.skao and data.skao.datasize is not None:
        return data.skao.datasize
    if isinstance(data, IvoaDataResource | SkaoDataResource) and data.ivoa and data.ivoa.datalink:
        return data.ivoa.datalink.content_length
    return None


class _Checker:
    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.refusals: list[Message] = []

    def refuse(self, kind: str, text: str) -> None:
        self.refusals.append(_refusal(kind, text))

    def executable(self, request: ExecutionRequest) -> None:
        exe = request.executable
        if exe is None:
            self.refuse("urn:executable-required", "the request has no executable")
            return
        if isinstance(exe, DockerContainer):
            self._docker(exe)
        elif isinstance(exe, JupyterNotebook | SingularityContainer) and not exe.location:
            self.refuse("urn:missing-required-value", "the executable needs a location")

    def _docker(self, exe: DockerContainer) -> None:
        if not exe.image or not exe.image.locations:
            self.refuse("urn:missing-required-value", "the container needs image.locations")
        if exe.image and exe.image.digest and not exe.image.digest.startswith("sha256:"):
            self.refuse("urn:invalid-value", f"image digest {exe.image.digest!r} is not sha256")
        if exe.privileged:
            self.refuse("urn:not-supported", "privileged containers are not allowed at this site")
        for n, arg in enumerate(
            [*([exe.entrypoint] if exe.entrypoint else []), *(exe.command or [])]
        ):
            if not arg or any(c.isspace() for c in arg):
                self.refuse(
                    "urn:not-supported",
                    f"command word {n + 1} ({arg[:40]!r}) is empty or holds a space: the "
                    "site's session service splits commands on spaces; put it in a script",
                )
        platform = exe.image.platform if exe.image else None
        if platform:
            wanted = f"{platform.os or 'linux'}/{platform.architecture or 'amd64'}"
            if wanted not in self.settings.platforms:
                self.refuse(
                    "urn:not-supported",
                    f"platform {wanted} is not available here "
                    f"(only {', '.join(self.settings.platforms)})",
                )
        for port in (exe.network.ports or []) if exe.network else []:
            if port.protocol and port.protocol.upper() not in ("TCP", "UDP", "HTTP", "HTTPS"):
                self.refuse(
                    "urn:invalid-value",
                    f"port protocol {port.protocol!r} is not one of TCP, UDP, HTTP, HTTPS",
                )
            if port.external is not None and port.external.port is not None:
                self.refuse("urn:not-supported", "external ports are assigned by the site")

    def data_location(self, name: str, data: object) -> None:
        if isinstance(data, SimpleDataResource):
            if not data.location:
                self.refuse("urn:missing-required-value", f"data {name!r} needs a location")
            else:
                self._url(name, data.location)
        elif isinstance(data, S3DataResource) and not (data.endpoint and data.bucket):
            self.refuse("urn:missing-required-value", f"S3 data {name!r} needs endpoint and bucket")
        elif isinstance(data, RucioDataResource) and not (
            data.rucio and data.rucio.scope and data.rucio.object
        ):
            self.refuse("urn:missing-required-value", f"Rucio data {name!r} needs scope and object")
        elif isinstance(data, IvoaDataResource) and not (
            data.ivoa
            and (data.ivoa.ivoid or (data.ivoa.datalink and data.ivoa.datalink.access_url))
        ):
            self.refuse(
                "urn:missing-required-value",
                f"IVOA data {name!r} needs an ivoid or a DataLink access_url",
            )
        elif isinstance(data, SkaoDataResource) and not (
            data.skao and data.skao.namespace and data.skao.objectname
        ):
            self.refuse(
                "urn:missing-required-value", f"SKAO data {name!r} needs namespace and objectname"
            )

    def _url(self, name: str, location: str) -> None:
        parts = urlsplit(location)
        if parts.scheme in ("http", "https"):
            if not parts.netloc:
                self.refuse("urn:invalid-value", f"data {name!r}: {location!r} has no host")
            return
        if parts.scheme != "file":
            self.refuse(
                "urn:not-supported",
                f"data {name!r}: scheme {parts.scheme or 'none'!r} "
                "is not supported (http, https, file)",
            )
            return
        path = PurePosixPath(unquote(parts.path))
        roots = [PurePosixPath(str(r)) for r in self.settings.allowed_file_roots]
        if ".." in path.parts or not path.is_absolute():
            self.refuse("urn:invalid-value", f"data {name!r}: path traversal in {location!r}")
        elif not any(path.is_relative_to(root) for root in roots):
            self.refuse(
                "urn:not-supported",
                f"data {name!r}: file:// data must lie under an allowed root of this site",
            )


def _names(request: ExecutionRequest, checker: _Checker) -> None:
    """Give every component a name and refuse duplicates."""
    seen: set[str] = set()
    groups: list[tuple[str, list[LifecycleComponent]]] = [
        ("storage", list(request.storage or [])),
        ("data", list(request.data or [])),
        ("volume", list(request.compute.volumes or []) if request.compute else []),
    ]
    for family, items in groups:
        for i, item in enumerate(items):
            meta = item.meta or Metadata()
            if not meta.name:
                meta.name = f"{family}-{i}"
            if meta.name in seen:
                checker.refuse(
                    "urn:duplicate-resource", f"more than one resource is named {meta.name!r}"
                )
            seen.add(meta.name)
            item.meta = meta


def _link_storage(request: ExecutionRequest, settings: BrokerSettings, checker: _Checker) -> None:
    storage = list(request.storage or [])
    by_name = {s.meta.name: s for s in storage if s.meta and s.meta.name}
    data_names = {d.meta.name for d in request.data or [] if d.meta and d.meta.name}
    for store in storage:
        for ref in store.data or []:
            if ref not in data_names:
                checker.refuse(
                    "urn:resource-not-found",
                    f"storage {store.meta.name!r} lists "  # type: ignore[union-attr]
                    f"unknown data {ref!r}",
                )
    for data in request.data or []:
        name = data.meta.name if data.meta and data.meta.name else "data"
        checker.data_location(name, data)
        if data.storage is not None:
            if data.storage not in by_name:
                checker.refuse(
                    "urn:resource-not-found",
                    f"data {name!r} names unknown storage {data.storage!r}",
                )
            continue
        holder = next((s for s in storage if name in (s.data or [])), None)
        if holder is None:
            size = _data_bytes(data)
            gib = max(settings.default_storage, math.ceil(size / GIB) if size else 0)
            holder = SimpleStorageResource(
                meta=Metadata(name=f"Storage for [{name}]"),
                size=MinMax(min=gib, max=gib),
                data=[name],
            )
            storage.append(holder)
        data.storage = holder.meta.name  # type: ignore[union-attr]
    for store in storage:
        store.size = _range(store.size, settings.default_storage)
    request.storage = storage or None


def _check_mounts(request: ExecutionRequest, checker: _Checker) -> None:
    if request.compute is None:
        return
    targets = {r.meta.name for r in [*(request.storage or []), *(request.data or [])] if r.meta}
    paths: set[str] = set()
    for mount in request.compute.volumes or []:
        label = mount.meta.name if mount.meta else "volume"
        if mount.resource is None or mount.resource not in targets:
            checker.refuse(
                "urn:resource-not-found",
                f"volume {label!r} mounts unknown resource {mount.resource!r}",
            )
        path = PurePosixPath(mount.path or "")
        if not path.is_absolute() or ".." in path.parts:
            checker.refuse(
                "urn:invalid-value",
                f"volume {label!r}: mount path {mount.path!r} must be absolute, without '..'",
            )
        elif str(path) in paths:
            checker.refuse("urn:duplicate-resource", f"two volumes mount at {path}")
        paths.add(str(path))
        mount.mode = mount.mode or "READONLY"


def _schedule(
    request: ExecutionRequest,
    settings: BrokerSettings,
    now: datetime,
    preparation: timedelta,
    checker: _Checker,
) -> tuple[datetime, datetime, timedelta]:
    asked = request.schedule.requested if request.schedule else None
    duration = asked.duration if asked and asked.duration is not None else settings.default_duration
    if duration <= timedelta(0):
        raise InvalidInput(
            "The requested duration must be positive.",
            [FieldError("schedule.requested.duration", "must be longer than 0")],
        )
    if duration > settings.max_duration:
        checker.refuse(
            "urn:resource-limit",
            f"duration {format_duration(duration)} is longer "
            f"than this site books ({format_duration(settings.max_duration)})",
        )
    ready = now + preparation
    if asked is None or asked.start is None:
        return ready, ready + settings.default_window, duration
    window = asked.start
    if window.end < now:
        raise InvalidInput(
            "The requested start window is wholly in the past.",
            [
                FieldError(
                    "schedule.requested.start",
                    f"ends at {format_instant(window.end)}, before now ({format_instant(now)})",
                )
            ],
        )
    if window.end < ready:
        checker.refuse(
            "urn:resource-limit",
            "the session cannot be ready before "
            f"{format_instant(ready)}, after the requested window ends "
            f"({format_instant(window.end)})",
        )
        return window.start, window.end, duration
    return max(window.start, ready), window.end, duration


def take_in(
    request: ExecutionRequest,
    settings: BrokerSettings,
    now: datetime,
    preparation: timedelta | None = None,
    notes: list[str] | None = None,
) -> Intake:
    """Check ``request`` (changed in place: defaults filled) and derive the planner's inputs.

    ``preparation`` is the estimated time to prepare (the site setting when not given) and
    ``notes`` say how it was estimated; they are attached to every offer.
    """
    preparation = settings.preparation if preparation is None else preparation
    checker = _Checker(settings)
    checker.executable(request)
    compute = request.compute or SimpleComputeResource(meta=Metadata(name="compute"))
    compute.cores = _range(compute.cores, settings.default_cores)
    compute.memory = _range(compute.memory, settings.default_memory)
    request.compute = compute
    _names(request, checker)
    _link_storage(request, settings, checker)
    _check_mounts(request, checker)
    start, end, duration = _schedule(request, settings, now, preparation, checker)
    stores = request.storage or []
    low = Resources(
        compute.cores.min or 0,
        compute.memory.min or 0,
        0,
        sum(s.size.min or 0 for s in stores if s.size),
    )
    high = Resources(
        compute.cores.max or 0,
        compute.memory.max or 0,
        0,
        sum(s.size.max or 0 for s in stores if s.size),
    )
    told = [
        Message(
            kind="urn:preparation-estimate", level=MessageLevel.INFO, message=text, template=text
        )
        for text in notes or []
    ]
    return Intake(
        request, Demand(low, high), start, end, duration, preparation, checker.refusals, told
    )
