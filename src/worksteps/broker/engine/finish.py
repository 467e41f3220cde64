"""How steps end, and what that means for their session: a finished step unblocks the steps
that wait for it (and a launch makes the session AVAILABLE); a transient failure is retried
with backoff; a permanent one fails the session and frees its capacity; the release step
ends the session at the site and in the calendar.

Every transaction here that changes a session moves it (or appends its event) before it
touches the session's steps, the order the worker keeps too (see
:mod:`worksteps.broker.engine.worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import BookingRow, SessionRow, StepRow
from worksteps.broker.engine.drivers import DRIVERS, Outcome, StepView
from worksteps.broker.engine.progress import (
    is_interactive,
    move_session,
    stop_steps,
    wake_dependents,
)
from worksteps.broker.engine.step import Step
from worksteps.broker.lifecycle import SessionPhase
from worksteps.site.errors import SiteNotFound, TransientSiteError

if TYPE_CHECKING:
    from worksteps.broker.engine.worker import Engine

__all__ = ["Finisher"]

_OPEN = ("PENDING", "SUBMITTING", "SUBMITTED")


def _now() -> datetime:
    return datetime.now(UTC)


class Finisher:
    """The ends of the steps of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cfg = engine.cfg

    async def advance(
        self, conn: AsyncConnection, step: Step, outcome: Outcome, now: datetime, free: int
    ) -> list[Step]:
        """Consequences of ``step`` being done, in its transaction. Up to ``free`` of the steps
        it unblocks are claimed for this worker and returned (with their inputs), to be
        started once the transaction commits; the others are left due for any worker."""
        lease = now + self.cfg.lease if free > 0 else None
        # the monitor's first poll is ``monitor_interval`` away: the table keeps it till then
        later = {"monitor": self.cfg.monitor_interval}
        woken = await wake_dependents(conn, step.session, now, lease, free, later)
        if woken.left:
            self.engine.wake.set()
        if step.kind == "launch":
            url = outcome.result.get("connect_url")
            kind = str(step.params.get("kind"))
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
                conn, step.session, SessionPhase.AVAILABLE, now, changes={"connectors": connectors}
            )
            if not is_interactive(kind):  # a job: it runs rather than waits for a user
                await move_session(conn, step.session, SessionPhase.RUNNING, now)
        elif step.kind == "monitor":
            await move_session(
                conn, step.session, SessionPhase.RELEASING, now, "the session ended by itself"
            )
            await stop_steps(conn, step.session, now)
            self.engine.wake.set()  # the release is due
        return [
            Step.from_row(
                r, fresh=True, inputs={k: woken.results.get(k, {}) for k in r.after or []}
            )
            for r in woken.claimed
        ]

    async def retry(self, step: Step, exc: BaseException) -> None:
        failures = step.failures + 1
        since = step.progressed or step.started
        if since is not None and step.kind != "release" and _now() - since > self.cfg.stall_timeout:
            await self.fail(step, f"{step.key}: no progress for {_now() - since} ({exc})")
            return
        if failures > self.cfg.retries:
            await self.fail(step, f"{step.key}: gave up after {failures} attempts: {exc}")
            return
        delay = min(self.cfg.retry_max, self.cfg.retry_base * 2 ** (failures - 1))
        driver = DRIVERS.get(step.kind)
        if step.state == "SUBMITTING" and driver and not driver.repeatable and _unsure(exc):
            delay = max(delay, self.cfg.settle)  # it may yet be processed: look for it after
        async with self.engine.db.write() as conn:
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == step.id, StepRow.state.in_(_OPEN))
                .values(
                    failures=failures,
                    polls=step.polls,
                    lease_until=None,
                    message=str(exc)[:2000],
                    next_at=_now() + timedelta(seconds=self.engine.timing.spread(delay)),
                )
            )
        self.engine.wake.set()

    async def fail(self, step: Step, message: str) -> None:
        now = _now()
        async with self.engine.changing(step.session) as conn:
            await move_session(conn, step.session, SessionPhase.FAILED, now, message)
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == step.id, StepRow.state.in_(_OPEN))
                .values(state="FAILED", message=message[:2000], finished=now, lease_until=None)
            )
            await stop_steps(conn, step.session, now)
            await _release_booking(conn, step.session)
        self.engine.wake.set()  # the release is due

    async def release(self, step: Step) -> None:
        """End the session: delete what runs at the site, free the booking, finish the phase."""
        engine = self.engine
        async with engine.db.read() as conn:
            steps = list(
                await conn.execute(
                    select(StepRow).where(
                        StepRow.session == step.session,
                        or_(
                            StepRow.ref.is_not(None),
                            and_(StepRow.kind == "launch", StepRow.started.is_not(None)),
                        ),
                    )
                )
            )
        for found in steps:
            # a launch without a reference may still have made a session (its answer lost)
            if found.kind in ("launch", "place", "stage"):
                view = StepView(found.session, found.key, found.kind, found.params, found.ref)
                with contextlib.suppress(SiteNotFound):
                    try:
                        async with asyncio.timeout(self.cfg.call_timeout):
                            await DRIVERS[found.kind].cancel(engine.services, view)
                    except (TransientSiteError, TimeoutError) as exc:
                        if found.kind == "launch":
                            await self.retry(step, exc)
                            return
        now = _now()
        async with engine.changing(step.session) as conn:
            phase = (
                await conn.execute(select(SessionRow.phase).where(SessionRow.uuid == step.session))
            ).scalar()
            if phase in ("ACCEPTED", "WAITING", "PREPARING"):
                await move_session(
                    conn,
                    step.session,
                    SessionPhase.FAILED,
                    now,
                    "preparation did not finish before the booking ended",
                )
            await move_session(conn, step.session, SessionPhase.RELEASING, now)
            await move_session(conn, step.session, SessionPhase.COMPLETED, now)
            await stop_steps(conn, step.session, now)
            await conn.execute(
                update(StepRow)
                .where(StepRow.id == step.id)
                .values(state="DONE", finished=now, lease_until=None)
            )
            await _release_booking(conn, step.session)


def _unsure(exc: BaseException) -> bool:
    """Whether the failed call may have been done: no answer came (a timeout, a reset)."""
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, TransientSiteError) and exc.status is None


async def _release_booking(conn: AsyncConnection, session: str) -> None:
    await conn.execute(
        update(BookingRow).where(BookingRow.session == session).values(state="RELEASED")
    )
