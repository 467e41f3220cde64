"""Checking a workstep's content: every problem reported at once, each with its field and reason.

:func:`parse_part` reads one part sent by a client (legacy kind URIs accepted, as the broker
does) and :func:`check_content` checks a whole content: the rules a broker would apply
(:mod:`worksteps.broker.intake`) plus the editor's limits, so a workstep that passes is one a
broker can take. Field names are dotted paths into the workstep (``compute.cores.max``,
``data.2.rucio.scope``, ``compute.volumes.0.resource``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import TypeAdapter, ValidationError

from worksteps.core.errors import FieldError, InvalidInput
from worksteps.editor.model import WorkstepContent
from worksteps.editor.settings import Limits
from worksteps.schema.common import LifecycleComponent, MinMax
from worksteps.schema.legacy import normalize_request
from worksteps.schema.resources import (
    DockerContainer,
    IvoaDataResource,
    JupyterNotebook,
    RucioDataResource,
    S3DataResource,
    SimpleDataResource,
    SingularityContainer,
    SkaoDataResource,
)

__all__ = ["IMAGE_REFERENCE", "check_content", "field_errors", "parse_part", "refuse_if_any"]

_T = TypeVar("_T")

IMAGE_REFERENCE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?"
)
"""A container image reference: ``[registry[:port]/]path[:tag][@sha256:digest]``."""

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GIB_UNITS = (None, "", "GiB", "G", "Gi")


def field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    """Pydantic errors as field errors; discriminator tags (kind URIs) are left out of paths."""
    errors = []
    for error in exc.errors():
        parts = [prefix] if prefix else []
        parts += [str(p) for p in error["loc"] if "://" not in str(p)]
        errors.append(FieldError(".".join(parts) or "body", str(error["msg"])))
    return errors


def parse_part(kind: type[_T] | Any, value: Any, field: str) -> _T:
    """Validate one part of a workstep sent by a client, or raise InvalidInput naming fields.

    ``field`` is the part's name in an ExecutionRequest (``executable``, ``compute``, ``data``,
    ``storage``, ``schedule``); legacy kind URIs and shapes are rewritten first.
    """
    if value is not None and field in ("executable", "compute", "data", "storage"):
        value = normalize_request({field: value}).get(field, value)
    try:
        parsed: _T = TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        raise InvalidInput(f"The {field} is not valid.", field_errors(exc, field)) from None
    return parsed


def refuse_if_any(errors: Sequence[FieldError], what: str = "The workstep") -> None:
    if errors:
        fields = ", ".join(sorted({e["field"] for e in errors}))
        raise InvalidInput(f"{what} is not valid ({fields}).", errors)


def _location_problem(location: str) -> str | None:
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        return None if parts.hostname else "the URL has no host"
    if parts.scheme == "file":
        path = PurePosixPath(unquote(parts.path))
        if not path.is_absolute() or ".." in path.parts:
            return "a file:// URL must name an absolute path without '..'"
        return None
    return f"scheme {parts.scheme or 'none'!r} is not supported (http, https, file)"


class _Checker:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.errors: list[FieldError] = []

    def refuse(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def executable(self, exe: Any) -> None:
        if isinstance(exe, DockerContainer):
            locations = exe.image.locations if exe.image else None
            if not locations:
                self.refuse("executable.image.locations", "give at least one image reference")
            for i, ref in enumerate(locations or []):
                if not IMAGE_REFERENCE.fullmatch(ref):
                    self.refuse(f"executable.image.locations.{i}", f"{ref!r} is not an image")
            if exe.image and exe.image.digest and not _DIGEST.fullmatch(exe.image.digest):
                self.refuse("executable.image.digest", "must be sha256: and 64 hex digits")
            if exe.privileged:
                self.refuse("executable.privileged", "privileged containers are not allowed")
            for name in exe.environment or {}:
                if not _ENV_NAME.fullmatch(name):
                    self.refuse(f"executable.environment.{name}", "not an environment name")
            for i, port in enumerate(exe.network.ports or [] if exe.network else []):
                if port.protocol and port.protocol.upper() not in ("TCP", "UDP", "HTTP", "HTTPS"):
                    self.refuse(f"executable.network.ports.{i}.protocol", "TCP, UDP, HTTP, HTTPS")
                if port.external is not None and port.external.port is not None:
                    self.refuse(f"executable.network.ports.{i}.external", "sites assign these")
        elif isinstance(exe, JupyterNotebook | SingularityContainer):
            if not exe.location:
                self.refuse("executable.location", "the executable needs a location")
            elif problem := _location_problem(exe.location):
                self.refuse("executable.location", problem)

    def size(self, field: str, size: MinMax | None, most: int, least: int = 0) -> None:
        if size is None:
            return
        if size.min is not None and size.min < least:
            self.refuse(f"{field}.min", f"must be at least {least}")
        if size.max is not None and size.max > most:
            self.refuse(f"{field}.max", f"at most {most} may be asked for")
        elif size.min is not None and size.min > most:
            self.refuse(f"{field}.min", f"at most {most} may be asked for")
        if size.units not in _GIB_UNITS and field.split(".")[-1] in ("memory", "size"):
            self.refuse(f"{field}.units", "sizes are counted in GiB; give units 'GiB'")

    def data(self, index: int, data: Any, storage_names: set[str]) -> None:
        field = f"data.{index}"
        if isinstance(data, SimpleDataResource):
            if not data.location:
                self.refuse(f"{field}.location", "a location is needed")
            elif problem := _location_problem(data.location):
                self.refuse(f"{field}.location", problem)
        elif isinstance(data, RucioDataResource):
            if not (data.rucio and data.rucio.scope):
                self.refuse(f"{field}.rucio.scope", "a Rucio scope is needed")
            if not (data.rucio and data.rucio.object):
                self.refuse(f"{field}.rucio.object", "a Rucio name is needed")
        elif isinstance(data, IvoaDataResource):
            ivoa = data.ivoa
            if not (ivoa and (ivoa.ivoid or (ivoa.datalink and ivoa.datalink.access_url))):
                self.refuse(f"{field}.ivoa", "an ivoid or a DataLink access_url is needed")
        elif isinstance(data, SkaoDataResource):
            if not (data.skao and data.skao.namespace and data.skao.objectname):
                self.refuse(f"{field}.skao", "namespace and objectname are needed")
        elif isinstance(data, S3DataResource) and not (data.endpoint and data.bucket):
            self.refuse(field, "S3 data needs endpoint and bucket")
        if data.storage is not None and data.storage not in storage_names:
            self.refuse(f"{field}.storage", f"names unknown storage {data.storage!r}")


def _names(content: WorkstepContent, checker: _Checker) -> tuple[set[str], set[str]]:
    """Data and storage share one namespace (mounts and links refer to them by name)."""
    seen: dict[str, str] = {}
    found: dict[str, set[str]] = {"data": set(), "storage": set()}
    groups: list[tuple[str, Sequence[LifecycleComponent]]] = [
        ("storage", content.storage),
        ("data", content.data),
    ]
    for family, items in groups:
        for i, item in enumerate(items):
            name = item.meta.name if item.meta else None
            if not name:
                checker.refuse(f"{family}.{i}.meta.name", "every resource needs a name")
                continue
            if name in seen:
                checker.refuse(f"{family}.{i}.meta.name", f"{name!r} is also {seen[name]}")
            seen[name] = f"{family}.{i}"
            found[family].add(name)
    return found["data"], found["storage"]


def check_content(content: WorkstepContent, limits: Limits) -> list[FieldError]:
    """Every problem of ``content``; an empty list means a broker can take it."""
    checker = _Checker(limits)
    checker.executable(content.executable)
    data_names, storage_names = _names(content, checker)
    if len(content.data) > limits.max_data:
        checker.refuse("data", f"at most {limits.max_data} data resources")
    for i, data in enumerate(content.data):
        checker.data(i, data, storage_names)
    for i, store in enumerate(content.storage):
        checker.size(f"storage.{i}.size", store.size, limits.max_storage)
        for j, ref in enumerate(store.data or []):
            if ref not in data_names:
                checker.refuse(f"storage.{i}.data.{j}", f"names unknown data {ref!r}")
    compute = content.compute
    if compute is not None:
        checker.size("compute.cores", compute.cores, limits.max_cores, least=1)
        checker.size("compute.memory", compute.memory, limits.max_memory, least=1)
        paths: set[PurePosixPath] = set()
        for i, mount in enumerate(compute.volumes or []):
            field = f"compute.volumes.{i}"
            if mount.resource not in data_names | storage_names:
                checker.refuse(f"{field}.resource", f"names no data or storage: {mount.resource!r}")
            path = PurePosixPath(mount.path or "")
            if not path.is_absolute() or ".." in path.parts:
                checker.refuse(f"{field}.path", "must be an absolute path without '..'")
            elif path in paths:
                checker.refuse(f"{field}.path", f"another volume is mounted at {path}")
            paths.add(path)
    requested = content.schedule.requested if content.schedule else None
    if requested is not None and requested.duration is not None:
        if requested.duration <= timedelta(0):
            checker.refuse("schedule.requested.duration", "must be longer than 0")
        elif requested.duration > limits.max_duration:
            checker.refuse("schedule.requested.duration", "longer than a workstep may ask")
    return checker.errors
