"""Run an ASGI app with uvicorn on loopback, in a background thread, until told to stop.

Used by tests, benchmarks and the embedded federation, so every service is reached over real
HTTP exactly as in production.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = [
    "GRACE",
    "ServedApp",
    "free_port",
    "freeze_start_up",
    "serve_in_thread",
    "start_in_thread",
]

GRACE = 5
"""Seconds a stopping service gives open requests (event streams, long-polls) to end before
they are cut (uvicorn waits for ever by default)."""


def freeze_start_up() -> None:
    """Keep what start-up made (modules, schemas, settings, clients: ~150k objects, there for
    the process's life) out of the cyclic collector's full passes, which otherwise stall the
    event loop for 40-80 ms now and then (seen in the broker and in the execution service).
    Once per process, by the first service that starts: later apps of a test run are not
    frozen."""
    if gc.get_freeze_count() == 0:
        gc.collect()  # start-up's own garbage is freed, not frozen
        gc.freeze()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServedApp:
    """An app being served: its base URL and a way to stop it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int):
        self.server = server
        self.thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 20.0
) -> ServedApp:
    """Start serving ``app`` and return once it accepts connections."""
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on {host}:{port} failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on {host}:{port} did not start in {startup_timeout}s")
        time.sleep(0.01)
    return ServedApp(server, thread, host, port)


@contextmanager
def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[ServedApp]:
    """Serve ``app`` for the duration of a ``with`` block."""
    served = start_in_thread(app, host, port)
    try:
        yield served
    finally:
        served.stop()
