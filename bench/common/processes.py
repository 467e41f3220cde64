"""Services under test as processes of their own, as in production: started, waited for,
measured and stopped by their own pid only.

A separate process keeps the load generator's event loop and CPU time out of the service's.
A broker is served by uvicorn (one worker, on loopback) from a factory (``--factory``, the
product's ``create_app`` unless an experiment names another) and configured only through
the product's environment variables (``WORKSTEPS_BROKER_…``), so nothing of a benchmark is
imported into the server; variables of that prefix in the benchmark's own environment are
not passed on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from worksteps.core.serving import free_port

__all__ = ["BROKER_APP", "UvicornProcess", "cpu_seconds", "environment", "stop"]

BROKER_APP = "worksteps.broker.api.app:create_app"
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User plus system CPU seconds of process ``pid`` (or of one of its threads) so far,
    from Linux ``/proc``; 0 once it is gone."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def environment(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without any ``WORKSTEPS_`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKSTEPS_")}
    env.update(settings)
    return env


def stop(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """Stop ``process`` if it still runs: SIGINT (uvicorn's graceful shutdown runs the
    lifespan's end), then SIGKILL after ``grace`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class UvicornProcess:
    """``with UvicornProcess(settings) as served:`` serves ``app`` at ``served.url``.

    ``settings`` are the environment variables that configure it. With ``profile``, the
    server runs under :mod:`cProfile` (its event loop thread; work handed to other threads is
    not seen) and writes the profile there when it stops.
    """

    def __init__(
        self,
        settings: dict[str, str],
        *,
        app: str = BROKER_APP,
        startup_timeout: float = 60.0,
        profile: Path | None = None,
    ) -> None:
        self.settings = settings
        self.app = app
        self.startup_timeout = startup_timeout
        self.profile = profile
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

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

    def __enter__(self) -> UvicornProcess:
        self._process = subprocess.Popen(self.command(), env=environment(self.settings))
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise RuntimeError(f"{self.app} exited at start-up (code {code})")
            try:
                if httpx.get(f"{self.url}/docs", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.app} did not answer within {self.startup_timeout} s")
            time.sleep(0.1)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def cpu_seconds(self) -> float:
        """CPU seconds of the whole server process so far."""
        return 0.0 if self._process is None else cpu_seconds(self._process.pid)

    def loop_cpu_seconds(self) -> float:
        """CPU seconds of its main thread (the event loop) so far."""
        if self._process is None:
            return 0.0
        return cpu_seconds(self._process.pid, self._process.pid)

    def stop(self) -> None:
        process, self._process = self._process, None
        stop(process)
