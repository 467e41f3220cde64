"""Start broker processes quickly: import the broker once, then fork a process per start.

    python reliability_launcher.py CONFIG.json LOG

Imports the broker, prints ``imported``, then for each line read on standard input (a port)
forks a process that serves the broker ``CONFIG.json`` describes (the fields of
``BrokerSettings``) with uvicorn on 127.0.0.1:PORT, its output going to ``LOG``, and prints
that process's id. This is what ``gunicorn --preload`` does: Python takes seconds to import
the broker, a fork takes milliseconds, so a crash test can kill often. A forked broker brings
no state along: this process has only imported modules (no thread, event loop, connection or
settings object exists when it forks), so everything a broker knows comes from its database.
Finished brokers are reaped at once; the launcher ends when its standard input does.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from types import FrameType

import uvicorn

from worksteps.broker.api.app import create_app
from worksteps.broker.settings import BrokerSettings

_PR_SET_PDEATHSIG = 1


def _reap(signum: int, frame: FrameType | None) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _die_with_launcher() -> None:
    """Linux: SIGKILL this process when the launcher ends (so when the test run ends, even
    a killed one), instead of leaving a broker behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _serve(config: Path, port: int, log: str) -> None:
    """In the forked process: serve until stopped, then leave (never return to the loop)."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own process group: a signal to the launcher's group misses it
        _die_with_launcher()
        quiet = os.open(os.devnull, os.O_RDONLY)
        target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(quiet, 0)
        os.dup2(target, 1)
        os.dup2(target, 2)
        settings = BrokerSettings.model_validate(json.loads(config.read_text()))
        uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    config, log = Path(sys.argv[1]), sys.argv[2]
    signal.signal(signal.SIGCHLD, _reap)
    sys.stdout.write("imported\n")
    sys.stdout.flush()
    while line := sys.stdin.readline():
        if threading.active_count() != 1:
            raise RuntimeError("a thread exists: forking now could leave a lock held")
        pid = os.fork()
        if pid == 0:
            _serve(config, int(line), log)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
