"""The real :class:`~worksteps.site.sessions.SessionService`: Skaha v1 through ``canfar``.

Uses canfar's ``AsyncSession`` (canfar 1.5 ships it beside the blocking ``Session``), so no
worker threads are needed and a cancelled call really stops. It is built with
``errors="raise"`` (canfar's default, "ignore", turns HTTP failures into empty results),
a runtime bearer token and an explicit ``url`` ending in ``/skaha/v1``, and with a
configuration validated from defaults alone, so neither ``~/.canfar/config.yaml`` nor
``CANFAR_*`` variables can redirect it.

Every canfar, httpx2 and validation error is converted here into :mod:`worksteps.site.errors`
(``raise ... from exc``); nothing from canfar leaks out. The adapter reports facts only.

One instance per event loop: canfar's HTTP client is bound to the loop of its first call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx2
import pydantic
from canfar.exceptions.session import SessionRequestError
from canfar.models.config import Configuration
from canfar.sessions import AsyncSession

from worksteps.site.errors import (
    PermanentSiteError,
    SiteError,
    TransientSiteError,
    classify_status,
)
from worksteps.site.sessions import SessionInfo, SessionKind, SessionSpec, SessionStatus

__all__ = ["SkahaSessions"]

SERVICE = "skaha"
T = TypeVar("T")

# Names the client's type alias allows although the server never sends them.
_STATUS_ALIASES = {"Succeeded": SessionStatus.COMPLETED, "Error": SessionStatus.FAILED}
_NEVER = datetime.max.replace(tzinfo=UTC)
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\S+")
# canfar says cores and ram are ignored for these kinds, and warns when they are given.
_SITE_SIZED = frozenset({SessionKind.DESKTOP, SessionKind.FIREFLY})


def _site_error(operation: str, exc: BaseException) -> SiteError:
    """The worksteps error for a failure of ``operation``."""
    if isinstance(exc, SessionRequestError):
        first = next(iter(exc.errors.values()), None)
        if first is not None:
            return _site_error(operation, first)
        return TransientSiteError(SERVICE, operation, str(exc))
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        message = exc.response.text.strip() or exc.response.reason_phrase
        return classify_status(status)(SERVICE, operation, message, status)
    if isinstance(exc, httpx2.HTTPError):
        return TransientSiteError(SERVICE, operation, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        return TransientSiteError(SERVICE, operation, f"unreadable answer: {exc}")
    if isinstance(exc, pydantic.ValidationError | ValueError | TypeError):
        return PermanentSiteError(SERVICE, operation, f"refused by the client: {exc}")
    return TransientSiteError(SERVICE, operation, f"{type(exc).__name__}: {exc}")


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _session_info(operation: str, doc: Mapping[str, Any], message: str | None) -> SessionInfo:
    raw_status = str(doc.get("status", ""))
    try:
        status = _STATUS_ALIASES.get(raw_status) or SessionStatus(raw_status)
        kind = SessionKind(str(doc.get("type", "")))
        return SessionInfo(
            session_id=str(doc["id"]),
            name=str(doc.get("name", "")),
            kind=kind,
            image=str(doc.get("image", "")),
            status=status,
            connect_url=str(doc.get("connectURL") or "") or None,
            start_time=_instant(doc.get("startTime")),
            expiry_time=_instant(doc.get("expiryTime")),
            message=message,
        )
    except (KeyError, ValueError) as exc:
        raise PermanentSiteError(
            SERVICE, operation, f"unexpected session document ({exc}): {dict(doc)}"
        ) from exc


def _latest_event(table: str) -> str | None:
    """``REASON: MESSAGE`` of the last row of a ``view=events`` table, None if there is none."""
    rows = [line.split() for line in table.splitlines() if line.strip()]
    rows = [row for row in rows if row[0] not in {"TYPE", "<none>"} and len(row) >= 2]
    if not rows:
        return None
    row = rows[-1]
    words = row[2:]
    while words and _INSTANT.fullmatch(words[-1]):
        words = words[:-1]
    return f"{row[1]}: {' '.join(words)}" if words else row[1]


class SkahaSessions:
    """Sessions on one Skaha v1 service, as the user whose bearer token is given.

    ``url`` is the versioned base, e.g. ``https://ws-uv.canfar.net/skaha/v1``. Desktop and
    Firefly sessions take the site's own size: their ``cores`` and ``ram`` are not sent.
    """

    def __init__(self, url: str, token: str, *, timeout: int = 30) -> None:
        if not token:
            raise ValueError("a bearer token is required")
        self.url = url
        self._client = AsyncSession(
            url=url,
            token=token,
            errors="raise",
            timeout=timeout,
            config=Configuration.from_document({}),
        )

    async def __aenter__(self) -> SkahaSessions:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.__aexit__(None, None, None)

    async def _call(self, operation: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except SiteError:
            raise
        except Exception as exc:
            raise _site_error(operation, exc) from exc

    async def launch(self, spec: SessionSpec) -> str:
        sized = spec.kind not in _SITE_SIZED
        ids = await self._call(
            "launch",
            self._client.create(
                name=spec.name,
                image=spec.image,
                cores=spec.cores if sized else None,
                ram=spec.ram if sized else None,
                kind=spec.kind.value,
                gpu=spec.gpus,
                cmd=spec.cmd,
                args=" ".join(spec.args) or None,
                env=dict(spec.env) or None,
                replicas=1,
            ),
        )
        if len(ids) != 1 or not ids[0]:
            raise TransientSiteError(SERVICE, "launch", f"no session id in the answer: {ids!r}")
        return str(ids[0])

    async def _document(self, operation: str, session_id: str) -> Mapping[str, Any]:
        docs = await self._call(operation, self._client.info(session_id))
        if len(docs) != 1 or not isinstance(docs[0], Mapping):
            raise TransientSiteError(SERVICE, operation, f"no session document for {session_id}")
        doc: Mapping[str, Any] = docs[0]
        return doc

    async def get(self, session_id: str) -> SessionInfo:
        doc = await self._document("get", session_id)
        message = None
        if doc.get("status") in {SessionStatus.PENDING, SessionStatus.FAILED, "Error"}:
            tables = await self._call("get", self._client.events(session_id))
            texts = [str(t.get(session_id, "")) for t in tables or []]
            message = _latest_event(texts[-1]) if texts else None
        return _session_info("get", doc, message)

    async def find(self, name: str) -> list[SessionInfo]:
        """As the protocol says; ``message`` is None here (it would cost a call per session)."""
        docs = await self._call("find", self._client.fetch())
        found = [
            _session_info("find", doc, None)
            for doc in docs
            if str(doc.get("name", "")).lower() == name.lower()
        ]
        return sorted(found, key=lambda s: (s.start_time is None, s.start_time or _NEVER))

    async def logs(self, session_id: str) -> str:
        texts = await self._call("logs", self._client.logs(session_id))
        if not texts or session_id not in texts:
            raise TransientSiteError(SERVICE, "logs", f"no logs in the answer for {session_id}")
        return str(texts[session_id])

    async def renew(self, session_id: str) -> datetime | None:
        await self._call("renew", self._client.renew(session_id))
        doc = await self._document("renew", session_id)
        return _instant(doc.get("expiryTime"))

    async def delete(self, session_id: str) -> None:
        await self._call("delete", self._client.destroy(session_id))
