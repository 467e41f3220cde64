"""Following a session: long-poll (``?wait=N``, in the manner of IVOA UWS) and server-sent
events resumable with ``Last-Event-ID``.

Long-poll answers when the session's document changes (its ``version``), or after N seconds.
The event stream sends the session's event log from a sequence number on, live, and ends once
the session is in a terminal phase and every event it had then is sent (or at its terminal
phase event); its event ids are the log's per-session sequence numbers, which commit in order
(see :mod:`worksteps.broker.engine.events`), so a stream never skips an event. Both follow
the session's changes before they read, so a change committed during a read is never missed,
and both answer or end at once when their client has gone or the server begins to stop (see
:mod:`worksteps.broker.api.stopping`): a client re-polls, or resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from worksteps.broker.api.media import respond
from worksteps.broker.api.openapi import EVENT_STREAM
from worksteps.broker.api.state import BrokerState
from worksteps.broker.engine.events import events_after
from worksteps.broker.lifecycle import SessionPhase, is_terminal
from worksteps.broker.sessions import read_session
from worksteps.core.clock import utcnow as now

__all__ = ["MAX_WAIT", "router", "session_with_wait"]

router = APIRouter()
MAX_WAIT = 300.0
_PAGE = 500  # events per read
_QUIET = 15.0  # longest wait between reads of an idle stream (pings keep it open)


async def session_with_wait(request: Request, uuid: str, wait: float | None) -> Response:
    state: BrokerState = request.app.state.broker
    with state.follow(uuid) as changes:
        view = await read_session(state.db, uuid, now())
        if wait and not is_terminal(view.phase):
            seen = view.version
            deadline = time.monotonic() + min(wait, MAX_WAIT)
            while (left := deadline - time.monotonic()) > 0:
                await changes.wait(left)
                changes.clear()
                if await request.is_disconnected():
                    break  # nobody to answer: free the request at once
                view = await read_session(state.db, uuid, now())
                if view.version != seen or state.stopping.is_set():
                    break
    return respond(request, view.doc, root="execution")


def _final(event: dict[str, object]) -> bool:
    phase = event.get("phase")
    return event.get("type") == "phase" and is_terminal(SessionPhase(str(phase)))


@router.get(
    "/sessions/{uuid}/events",
    summary="Server-sent events of a session's changes",
    response_class=EventSourceResponse,
    responses={200: EVENT_STREAM},
)
async def session_events(
    uuid: str,
    request: Request,
    last_event: str | None = Header(None, alias="Last-Event-ID"),
    after: int | None = Query(None, ge=0, description="Resume after this event id."),
) -> EventSourceResponse:
    state: BrokerState = request.app.state.broker
    start = after if after is not None else 0
    if after is None and last_event is not None and last_event.isdigit():
        start = int(last_event)
    await read_session(state.db, uuid, now())  # 404 for an unknown session

    async def stream() -> AsyncIterator[ServerSentEvent]:
        cursor = start
        with state.follow(uuid) as changes:  # before the first read: nothing slips by
            while True:
                changes.clear()
                # The session before its events: every event it counts is committed, so a
                # session that has ended is done with once the events it counts are sent.
                view = await read_session(state.db, uuid, now())
                while cursor < view.events:
                    events = await events_after(state.db, uuid, cursor, limit=_PAGE)
                    for event in events:
                        cursor = int(str(event["id"]))
                        yield ServerSentEvent(
                            data=json.dumps(event), event=str(event["type"]), id=str(cursor)
                        )
                        if _final(event):
                            return
                    if not events:
                        break
                if is_terminal(view.phase) or state.stopping.is_set():
                    return
                if await request.is_disconnected():
                    return
                await changes.wait(_QUIET)

    return EventSourceResponse(stream(), ping=10)
