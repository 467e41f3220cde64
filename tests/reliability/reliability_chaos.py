"""Transient faults for the emulated site services, per call and per connection.

:class:`Chaos` sits inside an emulator's :class:`~worksteps.emulators.faults.FaultInjector`
(which still counts every call first) and, for a share of the calls, answers 5xx at once,
answers only after ``delay`` seconds (the work is done, the answer is late), does the work only
after ``delay`` seconds (the request was received, but is processed after the client has
given up, as by a server whose queue is long), or
never answers until the client goes away. ``FaultInjector``'s own rules add latency or hang to
*every* call they match, so they cannot make a share of calls slow; this layer can.

:class:`FlakyPort` is a TCP relay in front of a service: it resets a share of the connections
it accepts, and now and then goes away for a moment (its listening socket closed, the open
connections reset) so that new connections are refused, as when a service restarts.

Both count what they did, so a test can show that the faults really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worksteps.emulators.rig import RunningEmulator

__all__ = ["Chaos", "ChaosMix", "FlakyPort", "calm", "unleash"]

_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True)
class ChaosMix:
    """Shares of calls that fail, by how; the rest are served normally."""

    errors: float = 0.08  # an immediate 500, 502, 503 or 504
    late: float = 0.04  # done at once, answered after ``delay``
    slow: float = 0.04  # done only after ``delay``, then answered
    hang: float = 0.04  # never answered (until the client disconnects)
    delay: float = 4.0  # seconds: beyond the broker's call timeout

    @property
    def share(self) -> float:
        return self.errors + self.late + self.slow + self.hang


class Chaos:
    """ASGI layer that fails a share of the calls of the app it wraps (see :class:`ChaosMix`)."""

    def __init__(self, app: ASGIApp, mix: ChaosMix, seed: int, only: str | None = None) -> None:
        self.app = app
        self.mix = mix
        self.only = re.compile(only) if only else None  # "METHOD /path" it may fault
        self.done: Counter[str] = Counter()  # calls begun, by what was done to them
        self.over: Counter[str] = Counter()  # ... and those whose handling has ended
        self._random = random.Random(seed)

    def _draw(self) -> str:
        r = self._random.random()
        for kind in ("errors", "late", "slow", "hang"):
            share: float = getattr(self.mix, kind)
            if r < share:
                return kind
            r -= share
        return "served"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.only and not self.only.search(f"{scope['method']} {scope['path']}")
        ):
            await self.app(scope, receive, send)
            return
        kind = self._draw()
        self.done[kind] += 1
        try:
            await self._handle(kind, scope, receive, send)
        finally:
            self.over[kind] += 1

    async def _handle(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        if kind == "errors":
            status = self._random.choice(_STATUSES)
            body = {"code": status, "message": "injected transient fault"}
            await JSONResponse(body, status_code=status)(scope, receive, send)
        elif kind == "hang":
            while (await receive())["type"] != "http.disconnect":
                pass
        elif kind == "slow":
            request = await _whole_request(receive)  # received now, processed late
            await asyncio.sleep(self.mix.delay)
            await self.app(scope, _replay(request, receive), send)
        elif kind == "late":
            answer: list[Message] = []

            async def keep(message: Message) -> None:
                answer.append(message)

            await self.app(scope, receive, keep)
            await asyncio.sleep(self.mix.delay)
            for message in answer:
                await send(message)  # uvicorn drops it if the client has gone
        else:
            await self.app(scope, receive, send)


async def _whole_request(receive: Receive) -> list[Message]:
    messages = [await receive()]
    while messages[-1]["type"] == "http.request" and messages[-1].get("more_body"):
        messages.append(await receive())
    return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` first, then whatever comes."""
    left = list(messages)

    async def replay() -> Message:
        return left.pop(0) if left else await receive()

    return replay


def unleash(
    emulators: Iterable[RunningEmulator], mix: ChaosMix, seed: int, only: str | None = None
) -> dict[str, Chaos]:
    """Put a :class:`Chaos` layer inside each emulator's fault injector (faulting only the
    calls whose ``METHOD /path`` matches ``only``, if given); by emulator name."""
    layers = {}
    for number, emulator in enumerate(emulators):
        layer = Chaos(emulator.app.app, mix, seed + number, only)
        emulator.app.app = layer
        layers[emulator.name] = layer
    return layers


def calm(emulators: Iterable[RunningEmulator]) -> None:
    """Take the :class:`Chaos` layers out again."""
    for emulator in emulators:
        inner = emulator.app.app
        if isinstance(inner, Chaos):
            emulator.app.app = inner.app


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FlakyPort:
    """A TCP relay on 127.0.0.1 in front of ``target`` (a base URL), with failing connections.

    ``reset_rate``: share of accepted connections reset at once. Every ``outage_every`` seconds
    on average the relay stops listening for ``outage_for`` seconds and resets the connections
    it has open, so clients meet refused and reset connections (``outage_every`` None: never).
    ``url`` is where to connect; ``counts["accepted"]`` the connections it accepted.
    """

    def __init__(
        self,
        target: str,
        *,
        reset_rate: float = 0.05,
        outage_every: float | None = 4.0,
        outage_for: float = 0.3,
        seed: int = 0,
    ) -> None:
        parts = urlsplit(target)
        assert parts.hostname is not None and parts.port is not None, target
        self._target = (parts.hostname, parts.port)
        self._path = parts.path
        self.reset_rate = reset_rate
        self.outage_every = outage_every
        self.outage_for = outage_for
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._open: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"flaky-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """``target`` with the relay's address: the same path below it."""
        return f"http://127.0.0.1:{self.port}{self._path}"

    def start(self) -> FlakyPort:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the relay did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await self._listen()
        self._ready.set()
        try:
            while not self._stopped.is_set():
                if self.outage_every is None:
                    await self._stopped.wait()
                    break
                pause = self._random.expovariate(1.0 / self.outage_every)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), pause)
                    break
                server.close()
                for writer in list(self._open):
                    _reset(writer)
                self.counts["outages"] += 1
                await asyncio.sleep(self.outage_for)
                server = await self._listen()
        finally:
            server.close()
            for writer in list(self._open):
                _reset(writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["accepted"] += 1
        if self._random.random() < self.reset_rate:
            self.counts["reset"] += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(writer)
            return
        self._open.update((writer, up_writer))
        pumps = [
            asyncio.create_task(_pump(reader, up_writer)),
            asyncio.create_task(_pump(up_reader, writer)),
        ]
        try:  # either side closing ends the relay of this connection
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            self._open.difference_update((writer, up_writer))
            for end in (writer, up_writer):
                end.close()  # what is buffered is still sent (a reset already aborted it)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
