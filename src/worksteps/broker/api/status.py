"""Following a session: long-poll (``?wait=N``, in the manner of IVOA UWS) and server-sent
events resumable with ``Last-Event-ID``. Both read the event log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from worksteps.broker.api.media import respond
from worksteps.broker.api.state import BrokerState
from worksteps.broker.engine.events import events_after, last_event_id
from worksteps.broker.lifecycle import SessionPhase, is_terminal
from worksteps.broker.sessions import get_session
from worksteps.core.clock import utcnow as now

__all__ = ["MAX_WAIT", "router", "session_with_wait", "wait_for_change"]

router = APIRouter()
MAX_WAIT = 300.0


async def wait_for_change(state: BrokerState, session: str, seconds: float, seen: int) -> None:
    """Return as soon as ``session`` has an event after ``seen``, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await state.bus.wait(session, left)
        if await last_event_id(state.db, session) > seen:
            return


def _terminal(doc: dict[str, Any]) -> bool:
    return is_terminal(SessionPhase(doc["phase"]))


async def session_with_wait(request: Request, uuid: str, wait: float | None) -> Response:
    state: BrokerState = request.app.state.broker
    seen = await last_event_id(state.db, uuid)  # before the read: no change slips between
    doc = await get_session(state.db, uuid, now())
    if wait and not _terminal(doc):
        await wait_for_change(state, uuid, min(wait, MAX_WAIT), seen)
        doc = await get_session(state.db, uuid, now())
    return respond(request, doc, root="execution")


@router.get("/sessions/{uuid}/events", summary="Server-sent events of a session's changes")
async def session_events(
    uuid: str,
    request: Request,
    last_event: str | None = Header(None, alias="Last-Event-ID"),
    after: int | None = Query(None, ge=0, description="Resume after this event id."),
) -> EventSourceResponse:
    state: BrokerState = request.app.state.broker
    await get_session(state.db, uuid, now())  # 404 for an unknown session, before streaming
    start = after if after is not None else 0
    if after is None and last_event is not None and last_event.isdigit():
        start = int(last_event)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        cursor = start
        phase = None
        while True:
            for event in await events_after(state.db, uuid, cursor):
                cursor = int(event["id"])
                phase = event.get("phase", phase)
                yield ServerSentEvent(
                    data=json.dumps(event), event=str(event["type"]), id=str(cursor)
                )
            doc = await get_session(state.db, uuid, now())
            if _terminal(doc) and not await events_after(state.db, uuid, cursor, limit=1):
                if phase != doc["phase"]:
                    # PostgreSQL may make an earlier event id visible after a later one:
                    # never end a stream without its final phase
                    final = {"id": cursor, "type": "phase", "phase": doc["phase"]}
                    yield ServerSentEvent(data=json.dumps(final), event="phase", id=str(cursor))
                return
            if await request.is_disconnected():
                return
            await state.bus.wait(uuid, 15.0)
            await asyncio.sleep(0)

    return EventSourceResponse(stream(), ping=10)
