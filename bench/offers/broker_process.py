"""The broker under test, run as its own process: uvicorn, one worker, on loopback.

A separate process keeps the load generator's event loop and CPU time out of the broker's, as
in production. Settings go in through the product's environment variables
(``WORKSTEPS_BROKER_…``) and ``create_app`` is called by uvicorn's ``--factory``, so nothing
of the benchmark is imported into the server. The process is stopped by its own pid only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

import httpx
from preload import SITE, SiteCapacity

from worksteps.core.serving import free_port

__all__ = ["BrokerProcess"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _seconds(value: timedelta) -> str:
    return f"PT{int(value.total_seconds())}S"


@dataclass
class BrokerProcess:
    """``with BrokerProcess(url, capacity) as broker:`` serves at ``broker.url`` until the end."""

    database_url: str
    capacity: SiteCapacity
    offer_ttl: timedelta = timedelta(minutes=5)
    startup_timeout: float = 90.0

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKSTEPS_")}
        env.update(
            WORKSTEPS_BROKER_SITE=SITE,
            WORKSTEPS_BROKER_DATABASE_URL=self.database_url,
            WORKSTEPS_BROKER_OFFER_TTL=_seconds(self.offer_ttl),
            WORKSTEPS_BROKER_CAPACITY__CORES=str(self.capacity.cores),
            WORKSTEPS_BROKER_CAPACITY__MEMORY=str(self.capacity.memory),
            WORKSTEPS_BROKER_CAPACITY__GPUS=str(self.capacity.gpus),
            WORKSTEPS_BROKER_CAPACITY__STORAGE=str(self.capacity.storage),
        )
        return env

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "worksteps.broker.api.app:create_app",
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

    def cpu_seconds(self) -> float:
        """User plus system CPU time the broker process has used so far (Linux /proc)."""
        if self._process is None:
            return 0.0
        try:
            with open(f"/proc/{self._process.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _TICKS

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
