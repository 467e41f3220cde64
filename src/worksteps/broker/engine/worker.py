"""The worker: claims due steps, runs their drivers, records facts, and reschedules.

Polling is adaptive per step: the first poll comes ``poll_min`` after submission, each poll
that sees no progress waits ``poll_growth`` times longer (up to ``poll_max``), progress resets
the delay, and every delay is spread by ``jitter``. Transient failures back off exponentially
from ``retry_base``; after ``retries`` of them, or on a permanent failure, or when a step makes
no progress for ``stall_timeout`` (the watchdog), the session fails with a message naming the
step, the service and its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid as uuidlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from worksteps.broker.db.tables import BookingRow, SessionRow, StepRow
from worksteps.broker.engine.drivers import DRIVERS, Outcome, StepView
from worksteps.broker.engine.events import EventBus, append_event
from worksteps.broker.engine.progress import (
    is_interactive,
    move_session,
    stop_steps,
    wake_dependents,
)
from worksteps.broker.lifecycle import SessionPhase
from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database
from worksteps.site.errors import PermanentSiteError, SiteError, SiteNotFound, TransientSiteError
from worksteps.site.services import SiteServices

__all__ = ["Engine"]

log = logging.getLogger(__name__)
_OPEN = ("PENDING", "SUBMITTING", "SUBMITTED")


def _now() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self, db: Database, settings: BrokerSettings, services: SiteServices, bus: EventBus
    ) -> None:
        self.db = db
        self.settings = settings
        self.cfg = settings.engine
        self.services = services
        self.bus = bus
        self.name = f"worker-{uuidlib.uuid4().hex[:8]}"
        self.wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._random = random.Random()

    def _spread(self, seconds: float) -> float:
        return seconds * (1 + self._random.uniform(-self.cfg.jitter, self.cfg.jitter))

    async def run(self) -> None:
        if self.db.is_sqlite:  # one worker per SQLite database: leases of a dead one are void
            async with self.db.write() as conn:
                await conn.execute(update(StepRow).values(lease_until=None))
        try:
            while True:
                await self._tick()
        finally:
            for task in self._running:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._running, return_exceptions=True)

    async def _tick(self) -> None:
        free = self.cfg.concurrency - len(self._running)
        claimed = await self._claim(free) if free > 0 else []
        for row in claimed:
            task = asyncio.create_task(self._run_step(row), name=f"step-{row.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        delay = await self._next_due()
        self.wake.clear()
        if claimed:
            delay = 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=delay)

    async def _claim(self, limit: int) -> list[Any]:
        now = _now()
        async with self.db.write() as conn:
            due = (
                select(StepRow.id)
                .where(
                    StepRow.state.in_(_OPEN),
                    StepRow.next_at <= now,
                    or_(StepRow.lease_until.is_(None), StepRow.lease_until < now),
                )
                .order_by(StepRow.next_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = [r.id for r in await conn.execute(due)]
            if not ids:
                return []
            await conn.execute(
                update(StepRow).where(StepRow.id.in_(ids)).values(lease_until=now + self.cfg.lease)
            )
            return list(await conn.execute(select(StepRow).where(StepRow.id.in_(ids))))

    async def _next_due(self) -> float:
        async with self.db.read() as conn:
            found = await conn.execute(
                select(StepRow.next_at)
                .where(StepRow.state.in_(_OPEN))
                .order_by(StepRow.next_at)
                .limit(1)
            )
            first = found.first()
        if first is None:
            return 1.0
        due: datetime = first.next_at
        return max(0.0, min(1.0, (due - _now()).total_seconds()))

    async def _inputs(self, row: Any) -> dict[str, dict[str, Any]]:
        if not row.after:
            return {}
        async with self.db.read() as conn:
            found = await conn.execute(
                select(StepRow.key, StepRow.result).where(
                    StepRow.session == row.session, StepRow.key.in_(row.after)
                )
            )
            return {r.key: dict(r.result or {}) for r in found}

    async def _run_step(self, row: Any) -> None:
        try:
            if row.kind == "release":
                await self._release(row)
                return
            view = StepView(
                row.session, row.key, row.kind, row.params, row.ref, await self._inputs(row)
            )
            async with asyncio.timeout(self.cfg.call_timeout):
                if row.state == "SUBMITTED":
                    await self._poll(row, view)
                else:
                    await self._submit(row, view)
        except PermanentSiteError as exc:
            await self._fail(row, f"{row.key}: {exc}")
        except (TransientSiteError, TimeoutError) as exc:
            await self._retry(row, exc)
        except SiteError as exc:
            await self._fail(row, f"{row.key}: {exc}")
        except Exception as exc:
            log.exception("step %s failed unexpectedly", row.id)
            await self._retry(row, exc)
        finally:
            self.bus.notify(row.session)
            self.wake.set()  # a finished step may have made others due: claim them now

    async def _submit(self, row: Any, view: StepView) -> None:
        driver = DRIVERS[row.kind]
        now = _now()
        ref = await driver.recover(self.services, view) if row.state == "SUBMITTING" else None
        if ref is None:
            async with self.db.write() as conn:
                await conn.execute(
                    update(StepRow)
                    .where(StepRow.id == row.id)
                    .values(state="SUBMITTING", started=row.started or now)
                )
                await move_session(conn, row.session, SessionPhase.PREPARING, now)
            ref = await driver.submit(self.services, view)
        async with self.db.write() as conn:
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == row.id, StepRow.state.in_(_OPEN))
                .values(
                    state="SUBMITTED",
                    ref=ref,
                    interval=self.cfg.poll_min,
                    progressed=_now(),
                    lease_until=None,
                    next_at=_now() + timedelta(seconds=self.cfg.poll_min),
                )
            )
            await append_event(
                conn,
                row.session,
                "step",
                {"step": row.key, "kind": row.kind, "state": "SUBMITTED"},
                _now(),
            )

    async def _poll(self, row: Any, view: StepView) -> None:
        outcome = await DRIVERS[row.kind].poll(self.services, view)
        now = _now()
        moved = (outcome.bytes_done, outcome.bytes_total) != (row.bytes_done, row.bytes_total)
        if not outcome.done and not moved:
            since = row.progressed or row.started or now
            if now - since > self.cfg.stall_timeout:
                raise PermanentSiteError("engine", row.key, f"no progress for {now - since}")
        if row.kind == "monitor":
            interval = self.cfg.monitor_interval
        elif moved:
            interval = self.cfg.poll_min
        else:
            interval = min(
                self.cfg.poll_max, max(self.cfg.poll_min, row.interval * self.cfg.poll_growth)
            )
        async with self.db.write() as conn:
            values: dict[str, Any] = {
                "polls": row.polls + 1,
                "failures": 0,
                "interval": interval,
                "lease_until": None,
                "bytes_done": outcome.bytes_done,
                "bytes_total": outcome.bytes_total,
                "message": outcome.message[:2000] or None,
                "next_at": now + timedelta(seconds=self._spread(interval)),
            }
            if moved:
                values["progressed"] = now
            if outcome.done:
                values.update(state="DONE", result=outcome.result, finished=now)
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == row.id, StepRow.state == row.state)
                .values(**values)
            )
            if moved or outcome.done:
                await append_event(conn, row.session, "progress", _progress(row, outcome), now)
            if outcome.done:
                await self._advance(conn, row, outcome, now)

    async def _advance(self, conn: Any, row: Any, outcome: Outcome, now: datetime) -> None:
        await wake_dependents(conn, row.session, now)
        if row.kind == "launch":
            url = outcome.result.get("connect_url")
            kind = str(row.params.get("kind"))
            connectors = (
                [
                    {
                        "kind": f"urn:worksteps:connector:{kind}",
                        "status": "AVAILABLE",
                        "protocol": "HTTPS" if str(url).startswith("https") else "HTTP",
                        "location": url,
                    }
                ]
                if url
                else []
            )
            await move_session(
                conn, row.session, SessionPhase.AVAILABLE, now, changes={"connectors": connectors}
            )
            if not is_interactive(kind):  # a job: it runs rather than waits for a user
                await move_session(conn, row.session, SessionPhase.RUNNING, now)
        elif row.kind == "monitor":
            await move_session(
                conn, row.session, SessionPhase.RELEASING, now, "the session ended by itself"
            )
            await stop_steps(conn, row.session, now)

    async def _retry(self, row: Any, exc: BaseException) -> None:
        failures = row.failures + 1
        since = row.progressed or row.started
        if since is not None and row.kind != "release" and _now() - since > self.cfg.stall_timeout:
            await self._fail(row, f"{row.key}: no progress for {_now() - since} ({exc})")
            return
        if failures > self.cfg.retries:
            await self._fail(row, f"{row.key}: gave up after {failures} attempts: {exc}")
            return
        delay = min(self.cfg.retry_max, self.cfg.retry_base * 2 ** (failures - 1))
        async with self.db.write() as conn:
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == row.id)
                .values(
                    failures=failures,
                    lease_until=None,
                    message=str(exc)[:2000],
                    next_at=_now() + timedelta(seconds=self._spread(delay)),
                )
            )

    async def _fail(self, row: Any, message: str) -> None:
        now = _now()
        async with self.db.write() as conn:
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == row.id)
                .values(state="FAILED", message=message[:2000], finished=now, lease_until=None)
            )
            await move_session(conn, row.session, SessionPhase.FAILED, now, message)
            await stop_steps(conn, row.session, now)
            await _release_booking(conn, row.session, now)

    async def _release(self, row: Any) -> None:
        """End the session: delete what runs at the site, free the booking, finish the phase."""
        async with self.db.read() as conn:
            steps = list(
                await conn.execute(
                    select(StepRow).where(StepRow.session == row.session, StepRow.ref.is_not(None))
                )
            )
        for step in steps:
            if step.kind in ("launch", "place", "stage") and step.ref:
                view = StepView(step.session, step.key, step.kind, step.params, step.ref)
                with contextlib.suppress(SiteNotFound):
                    try:
                        async with asyncio.timeout(self.cfg.call_timeout):
                            await DRIVERS[step.kind].cancel(self.services, view)
                    except (TransientSiteError, TimeoutError) as exc:
                        if step.kind == "launch":
                            await self._retry(row, exc)
                            return
        now = _now()
        async with self.db.write() as conn:
            phase = (
                await conn.execute(select(SessionRow.phase).where(SessionRow.uuid == row.session))
            ).scalar()
            if phase in ("ACCEPTED", "WAITING", "PREPARING"):
                await move_session(
                    conn,
                    row.session,
                    SessionPhase.FAILED,
                    now,
                    "preparation did not finish before the booking ended",
                )
            await move_session(conn, row.session, SessionPhase.RELEASING, now)
            await move_session(conn, row.session, SessionPhase.COMPLETED, now)
            await stop_steps(conn, row.session, now)
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == row.id)
                .values(state="DONE", finished=now, lease_until=None)
            )
            await _release_booking(conn, row.session, now)


async def _release_booking(conn: Any, session: str, now: datetime) -> None:
    await conn.execute(
        update(BookingRow).where(BookingRow.session == session).values(state="RELEASED")
    )


def _progress(row: Any, outcome: Outcome) -> dict[str, Any]:
    body: dict[str, Any] = {
        "step": row.key,
        "kind": row.kind,
        "state": "DONE" if outcome.done else "RUNNING",
    }
    if outcome.bytes_total:
        body.update(
            bytes_done=outcome.bytes_done or 0,
            bytes_total=outcome.bytes_total,
            percent=round(100.0 * (outcome.bytes_done or 0) / outcome.bytes_total, 1),
        )
    if outcome.message:
        body["message"] = outcome.message
    return body
