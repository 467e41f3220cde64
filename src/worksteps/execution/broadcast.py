"""One relay per watched execution, shared by everyone watching it.

Without this, each watcher of an execution's events would open its own stream to the broker,
and every phase would be observed (a database write) once per watcher: a thousand people
watching cost a thousand broker streams, more than the connection pool holds. Here the first
watcher of an execution starts its relay (:func:`~worksteps.execution.relay.relay_events`,
from the session's first event); the events are kept in memory and every watcher reads them
from there, replaying what came before it joined and then following live.

Invariants:

- A watcher sees exactly the events with an id after its ``after`` (all of them when it has
  none), in the broker's order, each once, then the live ones; relay notes (no id) only from
  when it joined. It ends when the relay ends (after the session's final phase).
- The relay runs while someone watches: it starts when the first watcher reads, the last
  watcher leaving stops it, and a relay that has ended is forgotten, so memory is held only
  for executions being watched.
- The relay uses the first watcher's identity (every watcher was checked to own the execution
  before joining, and they all follow the same session).
- Past ``keep`` events, those every watcher has read are forgotten (a slow watcher loses
  nothing); a watcher resuming before the oldest event still kept gets a relay of its own
  instead (:meth:`Broadcasts.follow` returns None).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from sse_starlette import ServerSentEvent

__all__ = ["Broadcasts"]

log = logging.getLogger(__name__)

Source = Callable[[], AsyncIterator[ServerSentEvent]]


def _id(event: ServerSentEvent) -> int | None:
    ident = event.id
    return int(ident) if ident is not None and str(ident).isdigit() else None


class _Broadcast:
    """The events of one relay so far, and the watchers following them."""

    def __init__(self, source: Source, keep: int, forget: Callable[[], None]) -> None:
        self.events: list[ServerSentEvent] = []
        self.dropped = 0  # events no longer kept, from the start
        self.done = False
        self.watchers = 0
        self._positions: dict[object, int] = {}  # each watcher's next event (absolute)
        self._keep = keep
        self._forget = forget
        self._changed = asyncio.Event()
        self._source = source
        self._task: asyncio.Task[None] | None = None  # started by the first watcher

    async def _pump(self, events: AsyncIterator[ServerSentEvent]) -> None:
        try:
            async for event in events:
                self.events.append(event)
                self._trim()
                self._wake()
        except Exception:  # the watchers see the stream end; the cause goes to the log
            log.exception("the event relay failed")
        finally:
            self.done = True
            self._forget()
            self._wake()

    def _trim(self) -> None:
        """Past ``keep`` events, forget the oldest that every watcher has read."""
        if len(self.events) <= self._keep:
            return
        read = min(self._positions.values(), default=self.dropped + len(self.events))
        cut = min(read - self.dropped, len(self.events) - self._keep // 2)
        if cut > 0:
            del self.events[:cut]
            self.dropped += cut

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def oldest_kept(self) -> int | None:
        """The id of the oldest event still kept, once any was dropped."""
        if not self.dropped:
            return None
        return next((i for e in self.events if (i := _id(e)) is not None), None)

    async def follow(self, after: int | None) -> AsyncIterator[ServerSentEvent]:
        position = self.dropped
        joined = self.dropped + len(self.events)  # notes before this were not for us
        me = object()
        self._positions[me] = position
        self.watchers += 1
        if self._task is None:
            self._task = asyncio.create_task(self._pump(self._source()), name="event-broadcast")
        try:
            while True:
                changed = self._changed
                start = position - self.dropped  # never < 0: unread events are kept
                fresh = self.events[start:]  # a copy: trimming cannot take it away
                position = self._positions[me] = self.dropped + len(self.events)
                for offset, event in enumerate(fresh):
                    ident = _id(event)
                    if ident is None:
                        if self.dropped + start + offset >= joined:
                            yield event
                    elif after is None or ident > after:
                        yield event
                if self.done:
                    return
                await changed.wait()
        finally:
            del self._positions[me]
            self.watchers -= 1
            if self.watchers == 0 and not self.done:
                self.stop()

    def stop(self) -> None:
        self._forget()
        if self._task is not None:
            self._task.cancel()

    async def wait_stopped(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Broadcasts:
    """The live broadcasts of one execution service, by execution id."""

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self._live: dict[str, _Broadcast] = {}

    def __len__(self) -> int:
        return len(self._live)

    def follow(
        self, key: str, source: Source, after: int | None
    ) -> AsyncIterator[ServerSentEvent] | None:
        """The events of ``key`` after ``after``, through its broadcast (started from
        ``source`` when there is none); None when ``after`` is older than what is kept."""
        broadcast = self._live.get(key)
        if broadcast is None:
            broadcast = _Broadcast(source, self.keep, lambda: self._drop(key, broadcast))
            self._live[key] = broadcast
        oldest = broadcast.oldest_kept()
        if oldest is not None and (after is None or after < oldest - 1):
            return None
        return broadcast.follow(after)

    def _drop(self, key: str, broadcast: _Broadcast | None) -> None:
        if self._live.get(key) is broadcast:
            del self._live[key]

    async def aclose(self) -> None:
        live = list(self._live.values())
        for broadcast in live:
            broadcast.stop()
        for broadcast in live:
            await broadcast.wait_stopped()
