"""The broker under test, with its preparation engine, run as its own uvicorn process.

Settings go in through the product's environment variables (``WORKSTEPS_BROKER_…``; the
nested ``services`` and ``engine`` models as JSON), and ``create_app`` is called by uvicorn's
``--factory``, so nothing of the benchmark is imported into the server. Only what the site
needs is set: the engine keeps its defaults unless ``engine`` overrides some of them.
With ``profile``, the server runs under :mod:`cProfile` (its event loop thread; calls that the
site adapters hand to worker threads are not seen) and writes the profile when it stops.
``app`` is the factory uvicorn serves: the product's unless an experiment names another
(a variant of the broker found on ``PYTHONPATH``, to measure a proposed change).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from worksteps.core.serving import free_port

__all__ = ["BrokerProcess"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(path: str) -> float:
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class BrokerProcess:
    """``with BrokerProcess(url, services) as broker:`` serves at ``broker.url``."""

    def __init__(
        self,
        database_url: str,
        services: dict[str, Any],
        engine: dict[str, Any] | None = None,
        startup_timeout: float = 60.0,
        profile: Path | None = None,
        app: str = "worksteps.broker.api.app:create_app",
    ) -> None:
        self.database_url = database_url
        self.services = services
        self.engine = engine or {}
        self.startup_timeout = startup_timeout
        self.profile = profile
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKSTEPS_")}
        env.update(
            WORKSTEPS_BROKER_SITE=str(self.services["site"]),
            WORKSTEPS_BROKER_DATABASE_URL=self.database_url,
            WORKSTEPS_BROKER_SERVICES=json.dumps(self.services),
            WORKSTEPS_BROKER_CAPACITY__CORES="64",
            WORKSTEPS_BROKER_CAPACITY__MEMORY="256",
        )
        if self.engine:
            env["WORKSTEPS_BROKER_ENGINE"] = json.dumps(self.engine)
        return env

    def command(self) -> list[str]:
        profiling = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        return [
            sys.executable,
            *profiling,
            "-m",
            "uvicorn",
            "--factory",
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ]

    def __enter__(self) -> BrokerProcess:
        self._process = subprocess.Popen(self.command(), env=self._environment())
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise RuntimeError(f"the broker exited at start-up (code {code})")
            try:
                if httpx.get(f"{self.url}/docs", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the broker did not answer within {self.startup_timeout} s")
            time.sleep(0.1)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def cpu_seconds(self) -> tuple[float, float]:
        """User plus system CPU seconds used so far (Linux /proc): the whole process, and its
        main thread (the event loop; the rest is worker threads: the site clients that run
        in ``asyncio.to_thread`` and, on SQLite, the driver's connection threads)."""
        if self._process is None:
            return 0.0, 0.0
        pid = self._process.pid
        return _cpu(f"/proc/{pid}/stat"), _cpu(f"/proc/{pid}/task/{pid}/stat")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown runs the lifespan end
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
