"""Knowing that the server has begun to stop, so that clients' long-polls and event streams
end at once instead of holding the stop.

uvicorn stops in this order: it closes its sockets, waits for every open request to finish
(for ever, unless ``--timeout-graceful-shutdown``), and only then runs the lifespan's
shutdown; ASGI tells an open request nothing meanwhile. A long-poll would hold the stop until
its session changed (seconds while one prepares; up to ``wait``, 300 s, otherwise) and an
event stream for ever. So the lifespan watches the uvicorn server that runs it, found among
the tasks of its event loop (in the main thread or not: ``worksteps serve broker`` and the
test and federation threads alike), and calls :meth:`BrokerState.stop` as soon as the server's
``should_exit`` is set. Under another server nothing is found and the clients end when the
lifespan shuts down, as before.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from worksteps.broker.api.state import BrokerState

__all__ = ["serving_server", "watch_for_stop"]

log = logging.getLogger(__name__)
LOOK = 0.05
"""Seconds between looks at the server's ``should_exit`` (uvicorn's own loop looks every 0.1)."""


def serving_server() -> uvicorn.Server | None:
    """The uvicorn server whose event loop runs the caller (its ``serve`` coroutine's
    ``self``, in the chain of awaits of one of the loop's tasks), or None."""
    for task in asyncio.all_tasks():
        coro: object = task.get_coro()
        for _ in range(8):  # Server.serve is the task itself, or awaited near its top
            frame = getattr(coro, "cr_frame", None)
            found = frame.f_locals.get("self") if frame is not None else None
            if isinstance(found, uvicorn.Server):
                return found
            coro = getattr(coro, "cr_await", None)
            if coro is None:
                break
    return None


async def watch_for_stop(state: BrokerState) -> None:
    """Call ``state.stop()`` once the server that runs this app begins to stop."""
    server = serving_server()
    if server is None:
        log.debug("not served by uvicorn: clients end when the lifespan shuts down")
        return
    # uvicorn's flag is a plain attribute (set by its signal handler or by whoever stops it):
    # there is nothing to await, so look, as uvicorn's own main loop does.
    while not server.should_exit:  # noqa: ASYNC110
        await asyncio.sleep(LOOK)
    state.stop()
