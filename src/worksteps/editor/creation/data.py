"""From data references to data resources, the storage that holds them and their mounts.

A reference is one of:

- a Rucio DID ``scope:name`` → a Rucio data resource;
- an IVOA ivoid ``ivo://…`` → an IVOA data resource (resolved through the configured DataLink
  service when there is one, so the broker knows where the bytes are);
- a DataLink URL (a ``…/datalink`` or ``…/links`` path, or an ``ID=`` query) → resolved: the
  ``#this`` row gives the access URL, size and type;
- any other ``http``, ``https`` or ``file`` URL → a simple data resource at that location.

:func:`attach` adds resources to a workstep content: each gets a unique name, all of them one
storage resource (sized from the known byte counts, at least 1 GiB) and a read-only mount at
``/data/<name>``; a content without compute gets a modest default.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Sequence
from urllib.parse import parse_qs, quote, unquote, urlsplit

from worksteps.core.auth import Principal
from worksteps.core.errors import FieldError, InvalidInput
from worksteps.editor.creation.datalink import primary_link, read_datalink
from worksteps.editor.fetch import Fetcher
from worksteps.editor.model import WorkstepContent
from worksteps.schema.common import Metadata, MinMax
from worksteps.schema.resources import (
    DataLink,
    DataResource,
    IvoaBlock,
    IvoaDataResource,
    RucioBlock,
    RucioDataResource,
    SimpleComputeResource,
    SimpleDataResource,
    SimpleStorageResource,
    SimpleVolumeMount,
)

__all__ = [
    "DATA_STORAGE",
    "attach",
    "classify",
    "data_resources",
    "default_compute",
    "resource_name",
    "taken_names",
]

DATA_STORAGE = "data-storage"
GIB = 1 << 30
_DID = re.compile(
    r"(?P<scope>[A-Za-z0-9][A-Za-z0-9._-]{0,29}):(?P<name>[A-Za-z0-9][\w.\-/]{0,249})"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_compute() -> SimpleComputeResource:
    """What a workstep asks for when nothing said otherwise: 1 to 4 cores, 2 to 8 GiB."""
    return SimpleComputeResource(
        meta=Metadata(name="compute"),
        cores=MinMax(min=1, max=4),
        memory=MinMax(min=2, max=8, units="GiB"),
    )


def classify(reference: str, field: str) -> str:
    """``rucio``, ``ivoid``, ``datalink`` or ``url``; 422 for anything else."""
    text = reference.strip()
    if text.lower().startswith("ivo://") and len(text) > len("ivo://"):
        return "ivoid"
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https", "file") and "://" in text:
        if parts.scheme.lower() != "file" and not parts.hostname:
            raise InvalidInput(
                "A data URL has no host.", [FieldError(field, "the URL has no host")]
            )
        tail = posixpath.basename(parts.path.rstrip("/")).lower()
        if tail in ("datalink", "links") or "ID" in parse_qs(parts.query):
            return "datalink"
        return "url"
    if "://" not in text and _DID.fullmatch(text):
        return "rucio"
    raise InvalidInput(
        f"{reference[:80]!r} is not a data reference.",
        [FieldError(field, "give a Rucio DID (scope:name), an ivoid (ivo://…) or a URL")],
    )


def resource_name(reference: str, taken: set[str]) -> str:
    """A short unique name for the resource of ``reference`` (its file name, made safe)."""
    text = reference.strip()
    if _DID.fullmatch(text) and "://" not in text:
        base = text.split(":", 1)[1]
    else:
        parts = urlsplit(text)
        ident = parse_qs(parts.query).get("ID", [""])[0]
        base = ident.rsplit("/", 1)[-1].split("?")[-1] or unquote(parts.path.rstrip("/"))
    base = _UNSAFE.sub("-", posixpath.basename(base)).strip("-.")[:60] or "data"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


async def _resolve(url: str, field: str, fetcher: Fetcher, principal: Principal | None) -> DataLink:
    fetched = await fetcher.fetch(url, field, principal)
    return primary_link(read_datalink(fetched.body, field), field)


async def data_resources(
    references: Sequence[str],
    *,
    fetcher: Fetcher,
    principal: Principal | None,
    taken: set[str],
    datalink_service: str | None = None,
    field: str = "references",
) -> list[DataResource]:
    """One data resource per reference, named uniquely (``taken`` grows)."""
    resources: list[DataResource] = []
    for i, reference in enumerate(references):
        where = f"{field}.{i}"
        text = reference.strip()
        kind = classify(text, where)
        meta = Metadata(name=resource_name(text, taken))
        if kind == "rucio":
            scope, name = text.split(":", 1)
            resources.append(
                RucioDataResource(meta=meta, rucio=RucioBlock(scope=scope, object=name))
            )
        elif kind == "url":
            resources.append(SimpleDataResource(meta=meta, location=text))
        elif kind == "ivoid":
            link = None
            if datalink_service:
                separator = "&" if "?" in datalink_service else "?"
                url = f"{datalink_service}{separator}ID={quote(text, safe='')}"
                link = await _resolve(url, where, fetcher, principal)
            resources.append(IvoaDataResource(meta=meta, ivoa=IvoaBlock(ivoid=text, datalink=link)))
        else:
            link = await _resolve(text, where, fetcher, principal)
            ivoid = link.ID if link.ID and link.ID.lower().startswith("ivo://") else None
            resources.append(
                IvoaDataResource(meta=meta, ivoa=IvoaBlock(ivoid=ivoid, datalink=link))
            )
    return resources


def _known_bytes(resource: DataResource) -> int:
    if isinstance(resource, IvoaDataResource) and resource.ivoa and resource.ivoa.datalink:
        return resource.ivoa.datalink.content_length or 0
    return 0


def taken_names(content: WorkstepContent) -> set[str]:
    items = [*content.data, *content.storage]
    volumes = content.compute.volumes or [] if content.compute else []
    return {i.meta.name for i in [*items, *volumes] if i.meta and i.meta.name}


def attach(content: WorkstepContent, resources: Sequence[DataResource]) -> None:
    """Add ``resources`` to ``content`` with their storage and read-only mounts (in place)."""
    if not resources:
        return
    taken = taken_names(content)
    storage = next((s for s in content.storage if s.meta and s.meta.name == DATA_STORAGE), None)
    if storage is None:
        name = DATA_STORAGE if DATA_STORAGE not in taken else resource_name(DATA_STORAGE, taken)
        storage = SimpleStorageResource(meta=Metadata(name=name), data=[], size=MinMax(units="GiB"))
        content.storage.append(storage)
    store_name = storage.meta.name if storage.meta else DATA_STORAGE
    known = sum(_known_bytes(r) for r in resources)
    size = storage.size or MinMax(units="GiB")
    low = (size.min or 0) + math.ceil(known / GIB)
    size.min = max(1, low)
    if size.max is not None and size.max < size.min:
        size.max = size.min
    storage.size = size
    if content.compute is None:
        content.compute = default_compute()
    mounts = content.compute.volumes or []
    paths = {m.path for m in mounts}
    for resource in resources:
        name = resource.meta.name if resource.meta and resource.meta.name else "data"
        resource.storage = store_name
        storage.data = [*(storage.data or []), name]
        content.data.append(resource)
        path, n = f"/data/{name}", 2
        while path in paths:
            path, n = f"/data/{name}-{n}", n + 1
        paths.add(path)
        mounts.append(
            SimpleVolumeMount(
                meta=Metadata(name=resource_name(f"{name}-mount", taken)),
                path=path,
                mode="READONLY",
                resource=name,
            )
        )
    content.compute.volumes = mounts
