"""The emulated cluster: owns every session record and drives each one through its life.

A session's life, as the real service reports it:

    Pending ──(start latency: "pulling")──► started (startTime, expiryTime set)
      notebook:  Pending until JupyterLab answers, then Running
      headless:  Running while the command runs, then Completed (exit 0) or Failed
      others:    Running (a placeholder page is served; nothing executes)
    any active ──(expiry passes)──► Failed, event DeadlineExceeded, processes killed
    any ──(DELETE)──► Terminating, processes killed, record gone after terminating_seconds

Invariants: one lifecycle task per session, cancelled before its processes are stopped, so a
stop never races a spawn; ``shutdown`` leaves no child process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from worksteps.emulators.skaha.config import SkahaConfig
from worksteps.emulators.skaha.model import (
    ACTIVE,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    TERMINATING,
    SessionRecord,
)
from worksteps.emulators.skaha.runner import (
    jupyter_argv,
    spawn,
    stop_process,
    wait_exit,
    wait_http_ok,
)

__all__ = ["SessionSupervisor"]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_NODE = "emulator-node-1"


class SessionSupervisor:
    """Session records by id, and the tasks that run them."""

    def __init__(self, config: SkahaConfig) -> None:
        self.config = config
        self.sessions: dict[str, SessionRecord] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._removals: set[asyncio.TimerHandle] = set()

    # -- queries -------------------------------------------------------------------------

    def new_id(self) -> str:
        """Eight random characters, like Skaha's (its VNC passwords stop at eight)."""
        while True:
            candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
            if candidate not in self.sessions:
                return candidate

    def owned_by(self, user: str) -> list[SessionRecord]:
        return [s for s in self.sessions.values() if s.user == user]

    def find(self, user: str, session_id: str) -> SessionRecord | None:
        """The user's session; another user's session is as unknown as a missing one."""
        record = self.sessions.get(session_id)
        return record if record is not None and record.user == user else None

    def interactive_count(self, user: str) -> int:
        """What the quota counts: the user's non-headless Pending or Running sessions."""
        return sum(1 for s in self.owned_by(user) if s.kind != "headless" and s.active)

    # -- commands ------------------------------------------------------------------------

    def launch(self, record: SessionRecord) -> None:
        """Register the session and start its lifecycle in the background."""
        self.sessions[record.id] = record
        self._prepare_directories(record)
        self._tasks[record.id] = asyncio.create_task(
            self._lifecycle(record), name=f"skaha-session-{record.id}"
        )

    def renew(self, record: SessionRecord) -> None:
        """Reset the expiry to now + lifetime when that is later (PostAction.renew).

        A session that has not started has no deadline yet: its lifetime counts from start.
        """
        if record.start_time is None:
            return
        renewed = datetime.now(UTC) + timedelta(seconds=self.config.session_lifetime)
        if record.expiry_time is None or renewed > record.expiry_time:
            record.expiry_time = renewed
            record.wake.set()

    async def delete(self, record: SessionRecord) -> None:
        """End the session now: kill its processes, show Terminating, then forget it."""
        record.status = TERMINATING
        record.record_event("Normal", "Killing", "Stopping container (session deleted)")
        await self._stop(record)
        loop = asyncio.get_running_loop()
        handle = loop.call_later(self.config.terminating_seconds, self._forget, record)
        self._removals.add(handle)

    async def shutdown(self) -> None:
        """Stop every session and every process (app shutdown)."""
        for handle in self._removals:
            handle.cancel()
        self._removals.clear()
        await asyncio.gather(*(self._stop(r) for r in list(self.sessions.values())))
        self.sessions.clear()

    # -- internals -----------------------------------------------------------------------

    def _forget(self, record: SessionRecord) -> None:
        if self.sessions.get(record.id) is record:
            del self.sessions[record.id]

    async def _stop(self, record: SessionRecord) -> None:
        task = self._tasks.pop(record.id, None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._kill(record)

    async def _kill(self, record: SessionRecord) -> None:
        """Stop the session's processes once; later calls find nothing left to do."""
        if record.process is not None and not record.reaped:
            await stop_process(record.process, self.config.stop_grace)
            record.reaped = True

    def _prepare_directories(self, record: SessionRecord) -> None:
        """The working directory, with the user's storage at <top>/home/<user> inside it."""
        home = self.config.user_home(record.user)
        home.mkdir(parents=True, exist_ok=True)
        workdir = self.config.session_dir(record.id)
        mount = workdir / self.config.top_level_directory / "home" / record.user
        mount.parent.mkdir(parents=True, exist_ok=True)
        if not mount.is_symlink():
            mount.symlink_to(home.resolve(), target_is_directory=True)

    def _log(self, record: SessionRecord, line: str) -> None:
        path = self.config.log_path(record.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as log:
            log.write(line + "\n")

    async def _lifecycle(self, record: SessionRecord) -> None:
        try:
            await self._run(record)
        except Exception as exc:  # a bug or a broken host must fail the session, not hide
            self._log(record, f"emulator: session failed: {exc!r}")
            record.finish(FAILED, "Warning", "EmulatorError", f"{type(exc).__name__}: {exc}")
            await self._kill(record)

    async def _run(self, record: SessionRecord) -> None:
        pod = f"skaha-{record.kind}-{record.user}-{record.id}".lower()
        record.record_event(
            "Normal", "Scheduled", f"Successfully assigned skaha-workload/{pod} to {_NODE}"
        )
        record.record_event("Normal", "Pulling", f'Pulling image "{record.image}"')
        await asyncio.sleep(self.config.start_latency)
        record.record_event(
            "Normal",
            "Pulled",
            f'Successfully pulled image "{record.image}" in {self.config.start_latency:.3f}s',
        )
        if not self._start(record):
            return
        record.record_event("Normal", "Created", f"Created container {record.kind}")
        record.record_event("Normal", "Started", f"Started container {record.kind}")
        readiness = None
        if record.kind == "notebook":
            readiness = asyncio.create_task(self._await_notebook(record))
        elif record.status == PENDING:
            record.status = RUNNING
        try:
            await self._until_end(record)
        finally:
            if readiness is not None:
                readiness.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await readiness
        await self._kill(record)  # the process has ended or expired: clear its group too

    def _start(self, record: SessionRecord) -> bool:
        """Start what runs the session; False (and Failed) when it cannot start."""
        now = datetime.now(UTC)
        record.start_time = now
        record.expiry_time = now + timedelta(seconds=self.config.session_lifetime)
        workdir = self.config.session_dir(record.id)
        log_path = self.config.log_path(record.id)
        if record.kind == "notebook":
            assert record.port is not None
            argv = jupyter_argv(
                self.config.jupyter_command,
                host=self.config.notebook_host,
                port=record.port,
                base_url=f"/session/notebook/{record.id}/",
                token=record.id,
                root_dir=workdir,
            )
            env = dict(os.environ)
        elif record.kind == "headless":
            if not record.command:
                self._log(record, f"emulator: {record.image} has no entrypoint here; give cmd")
                record.finish(FAILED, "Warning", "Failed", "Error: no command to run (cmd missing)")
                return False
            argv = record.command
            env = {**os.environ, **record.env, "HOME": str(self.config.user_home(record.user))}
        else:
            self._log(
                record,
                f"emulator: {record.kind} session {record.id} is emulated; "
                f"a placeholder page is served at {record.connect_url}",
            )
            return True
        try:
            record.process = spawn(argv, cwd=workdir, env=env, log_path=log_path)
        except OSError as exc:
            self._log(record, f"emulator: cannot start {argv[0]!r}: {exc}")
            record.finish(
                FAILED,
                "Warning",
                "Failed",
                f'Error: failed to start container: exec: "{argv[0]}": {exc.strerror}',
            )
            return False
        return True

    async def _await_notebook(self, record: SessionRecord) -> None:
        assert record.process is not None
        url = (
            f"http://{self.config.notebook_host}:{record.port}"
            f"/session/notebook/{record.id}/api/status?token={record.id}"
        )
        try:
            async with asyncio.timeout(self.config.notebook_ready_timeout):
                ready = await wait_http_ok(url, record.process)
        except TimeoutError:
            ready = False
        if ready and record.status == PENDING:
            record.status = RUNNING
        elif not ready and record.process.poll() is None:
            record.finish(FAILED, "Warning", "Unhealthy", "Readiness probe failed: no answer")
            record.wake.set()

    async def _until_end(self, record: SessionRecord) -> None:
        """Wait for the process to end, the expiry to pass, or a failure to be recorded."""
        exit_task = (
            asyncio.create_task(wait_exit(record.process)) if record.process is not None else None
        )
        try:
            while record.status in ACTIVE:
                assert record.expiry_time is not None
                remaining = (record.expiry_time - datetime.now(UTC)).total_seconds()
                if remaining <= 0:
                    record.finish(
                        FAILED,
                        "Warning",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                    )
                    return
                record.wake.clear()
                woken = asyncio.ensure_future(record.wake.wait())
                waits: set[asyncio.Future[Any]] = {woken}
                if exit_task is not None:
                    waits.add(exit_task)
                try:
                    done, _ = await asyncio.wait(
                        waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    woken.cancel()
                if exit_task is not None and exit_task in done:
                    self._on_exit(record, exit_task.result())
                    return
        finally:
            if exit_task is not None and not exit_task.done():
                exit_task.cancel()

    @staticmethod
    def _on_exit(record: SessionRecord, code: int) -> None:
        if code == 0:
            record.finish(COMPLETED, "Normal", "Completed", "Job completed")
        else:
            record.finish(
                FAILED,
                "Warning",
                "BackoffLimitExceeded",
                f"Job has reached the specified backoff limit (exit code {code})",
            )
