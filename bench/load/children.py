"""The parts under load as processes of their own, measured through Linux ``/proc``.

A child is a script of this folder that starts its part, prints one JSON line (what it
started and where) and serves until its standard input closes; :class:`Child` runs one and
stops it by its own pid only. Keeping the parts out of the benchmark's process keeps the
load generator's event loop and CPU out of what is measured, and makes each part's memory its
own (``VmRSS``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Child", "cpu_seconds", "rss_mb", "wait_for_stdin_to_close"]

HERE = Path(__file__).resolve().parent
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` (``VmRSS``), in MiB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def wait_for_stdin_to_close() -> None:
    """Block until the parent closes our standard input (or dies)."""
    while sys.stdin.buffer.read(1):
        pass


class Child:
    """``with Child("federation_process.py", args, log) as child:`` then ``child.info``."""

    def __init__(
        self, script: str, args: list[str], log: Path, startup_timeout: float = 120.0
    ) -> None:
        self.command = [sys.executable, str(HERE / script), *args]
        self.log = log  # its standard error: warnings and errors stay out of the tables
        self.startup_timeout = startup_timeout
        self.info: dict[str, Any] = {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Child:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as errors:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], self.startup_timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            tail = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"{self.command[1]} did not start:\n{tail}")
        self.info = json.loads(line)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self, grace: float = 60.0) -> None:
        """Close its standard input (it stops itself), then SIGKILL after ``grace`` s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        deadline = time.monotonic() + grace
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
