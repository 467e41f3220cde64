"""A minimal HTTP/1.1 client for the timed requests: one keep-alive connection per client.

The load generator shares the machine's cores with the broker (and PostgreSQL), so what it
spends per request is taken from what it measures. httpx costs about 1.5-2 ms of CPU per
request here, which at 300 requests/s would be most of a core; this client writes the request
in one ``write`` and reads the status line, the headers and exactly ``Content-Length`` bytes of
body, for a few tens of microseconds. It speaks only what the broker answers with (a
``Content-Length`` body; ``Connection: close`` reopens), and refuses anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

__all__ = ["Http1Connection"]


class Http1Connection:
    """``await conn.post(path, body)`` → ``(status, body)``, on one persistent connection."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"expected http://host:port, got {url!r}")
        self.host, self.port = parts.hostname, parts.port
        fixed = {"Host": f"{self.host}:{self.port}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("ascii")
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect, unless connected already (``post`` does so itself when needed)."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        return self._streams

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """Send one request and read its whole answer. A connection the server closed
        without answering raises :class:`ConnectionError` and is opened again next time."""
        try:
            return await self._exchange(path, body)
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self.close()
            raise ConnectionError(f"POST {path}: the connection broke ({exc!r})") from exc

    async def _exchange(self, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self.open()
        writer.write(
            b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode("ascii"), self._head, len(body), body)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length: int | None = None
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError(f"unexpected Transfer-Encoding {value.strip()!r}")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise RuntimeError("an answer without Content-Length")
        content = await reader.readexactly(length)
        if close:
            await self.close()
        return status, content

    async def close(self) -> None:
        streams, self._streams = self._streams, None
        if streams is not None:
            streams[1].close()
            with contextlib.suppress(OSError):
                await streams[1].wait_closed()
