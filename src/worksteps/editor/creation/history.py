"""From the user's history: the URL of one of their earlier worksteps or sessions, cloned.

Three documents are understood:

- a workstep of this (or another) editor: ``GET …/worksteps/{uuid}`` or
  ``…/worksteps/{uuid}/versions/{n}``. A URL of this editor is read from its own store on
  behalf of the caller (so another user's workstep is simply not found);
- an execution of the Workstep Execution service (``GET …/executions/{id}``): a ``request``
  holding the ExecutionRequest that was sent, and ``workstep: {uuid, version, name}``;
- a broker's session (``GET …/sessions/{uuid}``, an IVOA ExecutionSession): its executable,
  compute, data and storage, without what belongs to that one session (component identities,
  phases and schedules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import ValidationError

from worksteps.core.auth import Principal
from worksteps.core.errors import NotFound
from worksteps.editor.fetch import Fetcher, unfetchable
from worksteps.editor.model import (
    Origin,
    OriginMode,
    Workstep,
    WorkstepContent,
    content_of_request,
)
from worksteps.schema import kinds
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.legacy import normalize_request, normalize_session

__all__ = ["LocalLookup", "from_history", "local_workstep"]

LocalLookup = Callable[[UUID, int | None], Awaitable[Workstep]]
"""Reads one of the caller's worksteps (at a version, or the latest) from this editor."""

_WORKSTEP_PATH = re.compile(
    r"/worksteps/(?P<uuid>[0-9a-fA-F-]{36})(?:/versions/(?P<version>[0-9]{1,9}))?/?"
)
_CONTENT_KEYS = set(WorkstepContent.model_fields)
_SESSION_KINDS = {kinds.SESSION_SIMPLE, kinds.SESSION_SCHEDULED}
_IDENTITY = ("uuid", "url", "created", "modified", "messages", "options")


def local_workstep(url: str, editor_url: str) -> tuple[UUID, int | None] | None:
    """``(uuid, version)`` when ``url`` names a workstep of the editor at ``editor_url``."""
    base = urlsplit(editor_url.rstrip("/"))
    parts = urlsplit(url)
    same = (parts.scheme, parts.netloc.lower()) == (base.scheme, base.netloc.lower())
    if not same or not parts.path.startswith(base.path):
        return None
    match = _WORKSTEP_PATH.fullmatch(parts.path[len(base.path) :])
    if match is None:
        return None
    try:
        uuid = UUID(match["uuid"])
    except ValueError:
        return None
    return uuid, int(match["version"]) if match["version"] else None


def _strip_component(doc: Any) -> Any:
    """A session's component without what only that session had (identity, phase, schedule)."""
    if isinstance(doc, list):
        return [_strip_component(item) for item in doc]
    if not isinstance(doc, dict):
        return doc
    out = {k: _strip_component(v) for k, v in doc.items() if k not in ("phase", "schedule")}
    meta = out.get("meta")
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if k not in _IDENTITY}
        if meta:
            out["meta"] = meta
        else:
            out.pop("meta")
    return out


def _by_name(session: dict[str, Any], part: Any) -> Any:
    """``part`` with references by component UUID (as a broker writes them) made names again."""
    names: dict[str, str] = {}
    for item in [*(session.get("data") or []), *(session.get("storage") or [])]:
        meta = item.get("meta") if isinstance(item, dict) else None
        if isinstance(meta, dict) and isinstance(meta.get("uuid"), str) and meta.get("name"):
            names[meta["uuid"]] = str(meta["name"])
    if not isinstance(part, dict | list) or not names:
        return part
    part = json.loads(json.dumps(part))  # a copy to rewrite
    items = part if isinstance(part, list) else [part]
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("storage"), str):
            item["storage"] = names.get(item["storage"], item["storage"])
        if isinstance(item.get("data"), list):
            item["data"] = [names.get(r, r) if isinstance(r, str) else r for r in item["data"]]
        for volume in item.get("volumes") or []:
            if isinstance(volume, dict) and isinstance(volume.get("resource"), str):
                volume["resource"] = names.get(volume["resource"], volume["resource"])
    return part


def _request(doc: dict[str, Any], field: str) -> ExecutionRequest:
    try:
        return ExecutionRequest.model_validate(normalize_request(doc))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if "://" not in str(p))
        raise unfetchable(
            field, f"the document's request is not valid: {where}: {first['msg']}"
        ) from None


def _read(doc: Any, field: str) -> tuple[WorkstepContent, dict[str, Any]]:
    if not isinstance(doc, dict):
        raise unfetchable(field, "the document is not a workstep, an execution or a session")
    if "uuid" in doc and "version" in doc and "origin" in doc:  # a workstep
        body = {k: v for k, v in doc.items() if k in _CONTENT_KEYS}
        request = {
            **body,
            "meta": {"name": body.pop("name", None), "description": body.pop("description", None)},
        }
        content = content_of_request(_request(request, field))
        return content, {
            "kind": "workstep",
            "workstep": {"uuid": doc["uuid"], "version": doc["version"]},
        }
    if isinstance(doc.get("request"), dict):  # an execution of the Workstep Execution service
        content = content_of_request(_request(doc["request"], field))
        detail: dict[str, Any] = {"kind": "execution"}
        for key in ("id", "uuid", "workstep", "site", "phase"):
            if key in doc and isinstance(doc[key], str | dict | int):
                detail[key] = doc[key]
        if content.name is None and isinstance(doc.get("workstep"), dict):
            name = doc["workstep"].get("name")
            content.name = name if isinstance(name, str) else None
        return content, detail
    session = normalize_session(doc)
    if session.get("kind") in _SESSION_KINDS:  # a broker's ExecutionSession
        parts: dict[str, Any] = {
            k: _strip_component(_by_name(session, session[k]))
            for k in ("executable", "compute", "data", "storage")
            if k in session
        }
        content = content_of_request(_request(parts, field))
        found = session.get("meta")
        meta: dict[str, Any] = found if isinstance(found, dict) else {}
        if isinstance(meta.get("uuid"), str):
            content.name = f"Session {meta['uuid'][:8]}"
        return content, {
            "kind": "session",
            "session": meta.get("uuid"),
            "phase": session.get("phase"),
        }
    raise unfetchable(field, "the document is not a workstep, an execution or a session")


async def from_history(
    url: str,
    *,
    fetcher: Fetcher,
    principal: Principal,
    editor_url: str,
    lookup: LocalLookup,
    field: str = "url",
) -> tuple[WorkstepContent, Origin]:
    """The content of the earlier workstep or session at ``url``, and the origin to record."""
    url = url.strip()
    local = local_workstep(url, editor_url)
    if local is not None:
        try:
            earlier = await lookup(*local)
        except NotFound:
            raise unfetchable(field, "no such workstep of yours") from None
        detail = {
            "kind": "workstep",
            "workstep": {"uuid": str(earlier.uuid), "version": earlier.version},
        }
        return earlier.content, Origin(mode=OriginMode.HISTORY, source=url, detail=detail)
    fetched = await fetcher.fetch(url, field, principal)
    content, detail = _read(fetched.document(field), field)
    return content, Origin(mode=OriginMode.HISTORY, source=url, detail=detail)
