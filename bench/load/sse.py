"""A minimal server-sent-events client: one HTTP/1.1 GET, a chunked body, the SSE grammar.

A thousand watchers share the benchmark process with the drivers, and each event's receive
time is what is measured, so a watcher must cost little: this reads the socket with asyncio
streams and splits the lines itself (httpx with httpx-sse costs several times more per event).
It understands what the gateway sends: ``Transfer-Encoding: chunked`` (or a plain body up to
the close), ``id``/``event``/``data`` fields, comments (pings) and blank-line dispatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Event", "EventStream", "StreamRefused"]


@dataclass(frozen=True)
class Event:
    """One event, with the wall-clock time its blank line was read."""

    id: str | None
    event: str
    data: str
    received: float


class StreamRefused(Exception):
    """The server answered with something other than 200."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status


class EventStream:
    """``async with EventStream(url, token) as stream: async for event in stream: …``

    ``connected`` is the wall-clock time the answer's headers were read: events that happened
    before it were replayed, not notified.
    """

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname and parts.port, url
        self.host, self.port = parts.hostname, parts.port
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode("ascii")
        self.connected = 0.0
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._chunked = False

    async def __aenter__(self) -> EventStream:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(self._request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"transfer-encoding":
                self._chunked = b"chunked" in value.lower()
        if status != 200:
            body = b""
            with contextlib.suppress(Exception):
                body = await asyncio.wait_for(self._reader.read(2000), 2)
            await self.close()
            raise StreamRefused(status, body)
        self.connected = time.time()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _bytes(self) -> AsyncIterator[bytes]:
        reader = self._reader
        assert reader is not None
        while True:
            if not self._chunked:
                block = await reader.read(65536)
                if not block:
                    return
                yield block
                continue
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                return
            block = await reader.readexactly(size + 2)
            yield block[:-2]

    async def __aiter__(self) -> AsyncIterator[Event]:
        buffer = b""
        ident: str | None = None
        kind, data = "message", list[str]()
        async for block in self._bytes():
            buffer += block
            *lines, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8")
                if not line:
                    if data:
                        yield Event(ident, kind, "\n".join(data), time.time())
                    kind, data = "message", list[str]()
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                elif name == "event":
                    kind = value
                elif name == "id":
                    ident = value
