"""Following the chosen broker's session: its status (poll, or long-poll relayed with the
broker's own ``?wait=``) and its event stream (server-sent events relayed one for one).

Invariants of the event relay:

- Events keep the broker's ids, so a client's ``Last-Event-ID`` is the broker's event id and a
  resumed relay asks the broker for the events after it (``?after=``): nothing is lost and
  nothing repeated, across client reconnects and broker stream breaks alike.
- A stream that breaks (cut, refused, or silent past ``relay_idle`` although the broker
  pings) is reopened after the last event relayed, with backoff, at most ``relay_retries``
  times in a row; each attempt is told to the client as an ``relay`` event without an id.
- Every phase relayed is then handed to ``on_phase`` (a reader of the execution learns it
  from the broker itself meanwhile, see ``ExecutionService.get``); the relay ends after the
  session's final phase (the broker closes its stream then), and at once when a stream
  resumed after the final event ends empty (a client reconnecting after the end).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import httpx
from sse_starlette import ServerSentEvent

from worksteps.execution.brokers import (
    BrokerError,
    BrokerRefused,
    read_session,
    session_events,
)
from worksteps.execution.settings import ExecutionSettings

__all__ = ["FINAL_PHASES", "MAX_WAIT", "relay_events", "session_status"]

FINAL_PHASES: Final = frozenset({"REJECTED", "EXPIRED", "COMPLETED", "FAILED", "CANCELLED"})
MAX_WAIT: Final = 300.0


async def session_status(
    client: httpx.AsyncClient,
    settings: ExecutionSettings,
    broker: str,
    uuid: str,
    headers: dict[str, str],
    wait: float | None = None,
) -> dict[str, Any]:
    """The session document now, or (``wait``) as soon as it changes at the broker."""
    return await read_session(
        client,
        broker,
        uuid,
        headers,
        wait=min(wait, MAX_WAIT) if wait else None,
        within=settings.call_timeout,
        limit=settings.max_answer_bytes,
    )


def _phase(data: str) -> str | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    phase = body.get("phase") if isinstance(body, dict) else None
    return phase if isinstance(phase, str) else None


async def _final_phase(
    client: httpx.AsyncClient,
    settings: ExecutionSettings,
    broker: str,
    uuid: str,
    headers: dict[str, str],
) -> str | None:
    """The session's phase when it is final; None when it is not, or cannot be read."""
    try:
        doc = await session_status(client, settings, broker, uuid, headers)
    except BrokerError:
        return None
    phase = doc.get("phase")
    return phase if isinstance(phase, str) and phase in FINAL_PHASES else None


def _relay_note(status: str, **details: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps({"status": status, **details}), event="relay")


async def relay_events(
    client: httpx.AsyncClient,
    settings: ExecutionSettings,
    broker: str,
    uuid: str,
    headers: dict[str, str],
    *,
    after: int | None,
    on_phase: Callable[[str], Awaitable[None]],
) -> AsyncIterator[ServerSentEvent]:
    """The broker's events of session ``uuid`` after event ``after``, as they happen."""
    cursor = after
    failures = 0
    while True:
        try:
            async for event in session_events(
                client,
                broker,
                uuid,
                headers,
                after=cursor,
                within=settings.call_timeout,
                idle=settings.relay_idle,
                limit=settings.max_answer_bytes,
            ):
                failures = 0
                if event.id is not None and event.id.isdigit():
                    cursor = int(event.id)
                phase = _phase(event.data) if event.event == "phase" else None
                yield ServerSentEvent(data=event.data, event=event.event, id=event.id)
                if phase is not None:  # after: the watchers need not wait for the database
                    await on_phase(phase)
                if phase in FINAL_PHASES:
                    return
            # Nothing final was relayed: resumed after the last event of a session that has
            # ended (a client reconnecting), or the stream broke. Only the session can tell.
            if (phase := await _final_phase(client, settings, broker, uuid, headers)) is not None:
                await on_phase(phase)
                return
            error = "the broker ended its stream before the session ended"
        except BrokerRefused as exc:
            yield _relay_note("failed", error=exc.detail)
            return
        except BrokerError as exc:
            error = exc.detail
        failures += 1
        if failures > settings.relay_retries:
            yield _relay_note("gave-up", error=error, after=cursor)
            return
        yield _relay_note("reconnecting", attempt=failures, error=error, after=cursor)
        await asyncio.sleep(min(0.1 * 2 ** (failures - 1), 5.0))
