"""Real processes behind emulated sessions: start them, watch them, and stop every last one.

Invariants:
- Every session process is the leader of its own process group (``start_new_session``), so a
  stop reaches whatever it forked. JupyterLab starts kernels in sessions of their own; those
  are found through ``/proc`` before the stop and signalled directly, so nothing is orphaned.
- Spawning is synchronous (``subprocess.Popen``): there is no await between the fork and the
  moment the caller holds the process, so a cancelled task can never leak a child.
- Output (stdout and stderr, interleaved) goes straight to a log file owned by the session;
  ``view=logs`` reads that file, and it survives the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = [
    "jupyter_argv",
    "resolve_executable",
    "spawn",
    "stop_process",
    "wait_exit",
    "wait_http_ok",
]


def resolve_executable(name: str) -> str:
    """An absolute path for ``name``: next to the running Python first (a venv), then PATH."""
    if os.sep in name:
        return name
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name) or name


def jupyter_argv(
    command: Sequence[str], *, host: str, port: int, base_url: str, token: str, root_dir: Path
) -> list[str]:
    """The JupyterLab command line of one notebook session.

    ``base_url`` makes the session's connectURL path valid on the server itself, and
    ``port_retries=0`` makes a taken port a start failure rather than a silent move to a port
    the connectURL does not name. Update checks, news and language-server discovery (which
    shells out to npm) are off: sites have no internet, and start-up time is what users wait.
    """
    return [
        resolve_executable(command[0]),
        *command[1:],
        "--no-browser",
        "--allow-root",
        f"--ip={host}",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={base_url}",
        f"--ServerApp.root_dir={root_dir}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LanguageServerManager.autodetect=False",
    ]


def spawn(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a new process group writing to ``log_path``; OSError if it cannot."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def wait_exit(process: subprocess.Popen[bytes]) -> int:
    """Wait for the process to end and reap it; returns its exit code (negative: signal).

    Uses a pidfd when the kernel has them (readable once the process exits), so waiting costs
    nothing; otherwise a worker thread blocks in ``wait`` (it ends when the process does).
    """
    code = process.poll()
    if code is not None:
        return code
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        return await asyncio.to_thread(process.wait)
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, on_readable)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return process.wait()


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def _descendants(root: int) -> list[tuple[int, int]]:
    """Every live descendant of ``root`` as (pid, start time); empty where /proc is absent."""
    children: dict[int, list[tuple[int, int]]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: list[tuple[int, int]] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child[0])
    return found


def _signal_all(leader: int, others: Sequence[tuple[int, int]], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signum)
    for pid, started in others:
        stat = _stat(pid)
        if stat is None or stat[1] != started:
            continue  # gone, or the pid now belongs to someone else
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


async def stop_process(process: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM the process, its group and its descendants; SIGKILL what is left after ``grace``.

    Safe to call on a process that has already ended: leftovers of its group are still killed.
    Returns the exit code.
    """
    others = _descendants(process.pid)
    _signal_all(process.pid, others, signal.SIGTERM)
    try:
        code = await asyncio.wait_for(wait_exit(process), grace)
    except TimeoutError:
        code = None
    # Children that ignored SIGTERM, or that outlived a leader which did not.
    _signal_all(process.pid, others, signal.SIGKILL)
    if code is None:
        code = await wait_exit(process)
    return code


async def wait_http_ok(url: str, process: subprocess.Popen[bytes]) -> bool:
    """Poll ``url`` until it answers 200 (True) or the process ends (False).

    Callers bound the wait with ``asyncio.timeout``.
    """
    delay = 0.1
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return True
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.5)
    return False
