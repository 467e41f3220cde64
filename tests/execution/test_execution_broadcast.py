"""One relay per watched execution, shared by its watchers (``execution/broadcast.py``): each
watcher gets exactly its events, the relay starts once and stops with the last watcher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent

from worksteps.execution.broadcast import Broadcasts


class Relay:
    """A relay whose events the test releases one by one (a real async iterator)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue()
        self.started = 0
        self.closed = 0

    def put(self, ident: int | None, data: str = "x") -> None:
        self.queue.put_nowait(ServerSentEvent(data=data, id=None if ident is None else str(ident)))

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def events(self) -> AsyncIterator[ServerSentEvent]:
        self.started += 1
        try:
            while (event := await self.queue.get()) is not None:
                yield event
        finally:
            self.closed += 1


async def _collect(events: AsyncIterator[ServerSentEvent], into: list[str]) -> None:
    async for event in events:
        into.append(f"{event.id}:{event.data}")


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_watchers_share_one_relay_and_each_gets_its_events() -> None:
    relay, hub = Relay(), Broadcasts()
    first: list[str] = []
    watching = asyncio.create_task(_collect(_follow(hub, relay, None), first))
    await _settle()
    relay.put(1)
    relay.put(2)
    await _settle()
    late: list[str] = []
    resumed: list[str] = []
    tasks = [
        asyncio.create_task(_collect(_follow(hub, relay, None), late)),
        asyncio.create_task(_collect(_follow(hub, relay, 1), resumed)),
    ]
    await _settle()
    relay.put(None, "note")  # a relay note: only for those watching when it came
    relay.put(3)
    relay.end()
    await asyncio.wait_for(asyncio.gather(watching, *tasks), 5)
    assert first == ["1:x", "2:x", "None:note", "3:x"]
    assert late == ["1:x", "2:x", "None:note", "3:x"]
    assert resumed == ["2:x", "None:note", "3:x"]
    assert relay.started == 1 and len(hub) == 0  # one relay; forgotten once it ended


async def test_the_relay_stops_with_its_last_watcher() -> None:
    relay, hub = Relay(), Broadcasts()
    seen: list[str] = []
    tasks = [asyncio.create_task(_collect(_follow(hub, relay, None), seen)) for _ in range(3)]
    await _settle()
    relay.put(1)
    await _settle()
    assert seen == ["1:x"] * 3
    tasks[0].cancel()
    tasks[1].cancel()
    await _settle()
    assert relay.closed == 0 and len(hub) == 1
    tasks[2].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await _settle()
    assert relay.closed == 1 and len(hub) == 0
    again: list[str] = []  # a new watcher starts a new relay
    task = asyncio.create_task(_collect(_follow(hub, relay, None), again))
    await _settle()
    relay.put(7)
    relay.end()
    await asyncio.wait_for(task, 5)
    assert again == ["7:x"] and relay.started == 2


async def test_a_watcher_resuming_before_what_is_kept_gets_its_own_relay() -> None:
    relay, hub = Relay(), Broadcasts(keep=4)
    seen: list[str] = []
    task = asyncio.create_task(_collect(_follow(hub, relay, None), seen))
    await _settle()
    for n in range(1, 7):  # more than are kept, faster than the watcher reads: none lost
        relay.put(n)
    await _settle()
    assert seen == [f"{n}:x" for n in range(1, 7)]
    relay.put(7)  # all read: the oldest are forgotten now
    await _settle()
    assert hub.follow("e", relay.events, 0) is None  # events 1-5 are no longer kept
    assert hub.follow("e", relay.events, None) is None
    kept = hub.follow("e", relay.events, 5)
    assert kept is not None
    got: list[str] = []
    later = asyncio.create_task(_collect(kept, got))
    await _settle()
    relay.put(8)
    relay.end()
    await asyncio.wait_for(asyncio.gather(task, later), 5)
    assert got == ["6:x", "7:x", "8:x"]
    assert seen == [f"{n}:x" for n in range(1, 9)]
    await hub.aclose()


def _follow(hub: Broadcasts, relay: Relay, after: int | None) -> AsyncIterator[ServerSentEvent]:
    events = hub.follow("e", relay.events, after)
    assert events is not None
    return events
