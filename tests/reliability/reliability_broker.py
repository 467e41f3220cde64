"""A broker run as its own OS process (uvicorn), killed with SIGKILL and restarted at will.

The broker's settings are written to a JSON file beside its log, secrets included (it is the
broker's own configuration file).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr

from worksteps.broker.settings import BrokerSettings
from worksteps.core.serving import free_port

__all__ = ["BrokerProcess", "plain"]

LAUNCHER = Path(__file__).resolve().parent / "reliability_launcher.py"


def plain(value: Any) -> Any:
    """Settings as plain JSON values, secrets revealed."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str | int | float | bool | type(None)):
        return value
    return str(value)


class BrokerProcess:
    """``with BrokerProcess(settings, folder) as broker:`` serves at ``broker.url``.

    Each :meth:`start` is a new OS process, forked by a launcher that has imported the broker
    (see ``reliability_launcher.py``), so a restart costs the broker's own start-up only.
    """

    def __init__(self, settings: BrokerSettings, folder: Path, name: str = "broker") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.config = folder / f"{name}.json"
        self.config.write_text(json.dumps(plain(settings.model_dump())))
        self.log = folder / f"{name}.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pid: int | None = None
        self.starts = 0
        self.kills = 0
        self.downtimes: list[float] = []  # seconds from each SIGKILL until serving again
        self._killed_at: float | None = None
        self._launcher: subprocess.Popen[bytes] | None = None

    def _fork(self, timeout: float) -> int:
        """A new broker process (the launcher is started first if need be); its pid."""
        if self._launcher is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("WORKSTEPS_")}
            command = [sys.executable, str(LAUNCHER), str(self.config), str(self.log)]
            self._launcher = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
            )
            if self._line(timeout) != "imported":
                raise RuntimeError("the broker launcher did not start")
        assert self._launcher.stdin is not None
        self._launcher.stdin.write(f"{self.port}\n".encode())
        self._launcher.stdin.flush()
        return int(self._line(timeout))

    def _line(self, timeout: float) -> str:
        assert self._launcher is not None and self._launcher.stdout is not None
        ready, _, _ = select.select([self._launcher.stdout], [], [], timeout)
        return (self._launcher.stdout.readline() if ready else b"").decode().strip()

    def alive(self) -> bool:
        """Whether the broker process exists and has not ended (a zombie has ended)."""
        if self.pid is None:
            return False
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"

    def start(self, timeout: float = 60.0) -> None:
        """Serve (after :meth:`kill` or :meth:`stop` if it ran before)."""
        assert not self.alive(), "already running"
        self.pid = self._fork(timeout)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"the broker exited: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/docs", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not answer in {timeout} s: {self.tail()}")
            time.sleep(0.02)
        if self._killed_at is not None:
            self.downtimes.append(time.monotonic() - self._killed_at)
            self._killed_at = None

    def _gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given back, nothing flushed."""
        assert self.pid is not None, "not running"
        os.kill(self.pid, signal.SIGKILL)
        self._killed_at = time.monotonic()
        if not self._gone(10):
            raise RuntimeError(f"broker {self.pid} survived SIGKILL")
        self.kills += 1

    def stop(self) -> None:
        """Shut down cleanly (SIGINT runs the lifespan's end), then the launcher."""
        if self.alive():
            assert self.pid is not None
            os.kill(self.pid, signal.SIGINT)
            if not self._gone(20):
                os.kill(self.pid, signal.SIGKILL)
                self._gone(5)
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            assert launcher.stdin is not None
            launcher.stdin.close()
            try:
                launcher.wait(20)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait(5)
            if launcher.stdout is not None:
                launcher.stdout.close()

    def tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def __enter__(self) -> BrokerProcess:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
