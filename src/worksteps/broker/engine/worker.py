"""The worker: claims due steps, runs their drivers, records facts, and reschedules.

A claimed step is followed in its own task: submitted (if it was not), then polled on the
schedule of :class:`~worksteps.broker.engine.timing.PollTiming` for as long as its next poll is
due within :data:`HOLD` seconds (and half its lease has not passed); a slower step goes back
to the ``steps`` table with its next poll time and lease released, so it holds no task slot
and any replica may take it. Polls that see nothing new write nothing; progress, completion
and hand-backs are written at once, each write's event first (which takes the session's row
lock: so transactions touching a session and its steps lock them in one order). When a step
is done, the steps it unblocks are claimed in the same transaction and started at once, and
pending steps claimed from the table are started in their claim's transaction.

Transient failures back off exponentially from ``retry_base``; after ``retries`` of them, or
on a permanent failure, or when a step makes no progress for ``stall_timeout`` (the
watchdog), the session fails with a message naming the step, the service and its error.
Every committed change to a session wakes its followers in this process at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from worksteps.broker.db.tables import SessionRow, StepRow
from worksteps.broker.engine.drivers import DRIVERS, Outcome, StepView
from worksteps.broker.engine.events import EventBus, append_event
from worksteps.broker.engine.finish import Finisher
from worksteps.broker.engine.progress import move_session
from worksteps.broker.engine.step import Step, StepGone, progress_event
from worksteps.broker.engine.timing import PollTiming
from worksteps.broker.lifecycle import SessionPhase
from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database
from worksteps.site.errors import PermanentSiteError, SiteError, TransientSiteError
from worksteps.site.services import SiteServices

__all__ = ["HOLD", "Engine"]

T = TypeVar("T")
log = logging.getLogger(__name__)
_OPEN = ("PENDING", "SUBMITTING", "SUBMITTED")
_PREPARING = frozenset(DRIVERS) - {"monitor"}  # the kinds whose start makes a session PREPARING
HOLD = 1.0
"""Seconds: a step whose next poll is due sooner is followed in its task, not the table."""
IDLE = 1.0
"""The longest sleep between looks at the table (other replicas add and free steps too)."""


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
        """Set when steps may have become due that no task of this worker holds."""
        self.timing = PollTiming(self.cfg)
        self.finisher = Finisher(self)
        self._running: dict[asyncio.Task[None], str] = {}  # task: the step id it runs

    async def run(self) -> None:
        if self.db.is_sqlite:  # one worker per SQLite database: leases of a dead one are void
            async with self.db.write() as conn:
                await conn.execute(update(StepRow).values(lease_until=None))
        try:
            while True:
                try:
                    await self._tick()
                except Exception:  # keep working; the database may come back
                    log.exception("engine tick failed")
                    await asyncio.sleep(IDLE)
        finally:
            held = list(self._running.values())
            for task in list(self._running):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._running, return_exceptions=True)
            await self._release_leases(held)

    async def _release_leases(self, ids: list[str]) -> None:
        """On shutdown: let other replicas take this worker's steps at once (best effort;
        after a crash they wait for the leases to run out)."""
        if not ids:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5), self.db.write() as conn:
                await conn.execute(
                    update(StepRow).where(StepRow.id.in_(ids)).values(lease_until=None)
                )

    async def _tick(self) -> None:
        self.wake.clear()  # first: a wake-up that arrives during the claim is kept
        free = self.cfg.concurrency - len(self._running)
        delay = IDLE  # at capacity: a finishing step wakes the loop
        if free > 0:
            claimed, delay = await self._claim(free)
            if claimed == free:
                delay = 0.0  # there may be more: look again once a slot is free
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):  # not wait_for: no task, one turn sooner
                await self.wake.wait()

    def _start(self, steps: list[Step]) -> None:
        """Run ``steps`` in tasks of their own, the kinds that usually take longest first: so
        the site gets the request that bounds the session's preparation before the others.
        Call before waking a session's followers, whose answers would otherwise go first."""
        for step in sorted(steps, key=lambda s: -self.timing.longest(s.kind)):
            task = asyncio.create_task(self._run_step(step), name=f"step-{step.id}")
            self._running[task] = step.id
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)

    async def _claim(self, limit: int) -> tuple[int, float]:
        """Lease and start up to ``limit`` due steps, the pending ones moving to SUBMITTING (and
        their session to PREPARING); how many, and the seconds until the next open step that
        nobody holds is due (at most :data:`IDLE`)."""
        now = _now()
        unheld = or_(StepRow.lease_until.is_(None), StepRow.lease_until < now)
        steps: list[Step] = []
        moved: list[str] = []
        async with self.db.write() as conn:
            due = (
                select(StepRow.id, StepRow.state, StepRow.session, StepRow.kind)
                .where(StepRow.state.in_(_OPEN), StepRow.next_at <= now, unheld)
                .order_by(StepRow.next_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            found = list(await conn.execute(due))
            if found:
                fresh = [r for r in found if r.state == "PENDING" and r.kind in _PREPARING]
                starting = await self._startable(conn, sorted({r.session for r in fresh}))
                begin = [r.id for r in fresh if r.session in starting]
                claimed = await conn.execute(
                    update(StepRow)
                    .where(StepRow.id.in_([r.id for r in found]))
                    .values(
                        lease_until=now + self.cfg.lease,
                        state=case((StepRow.id.in_(begin), "SUBMITTING"), else_=StepRow.state),
                        started=case((StepRow.id.in_(begin), now), else_=StepRow.started),
                    )
                    .returning(StepRow)
                )
                steps = [Step.from_row(r, fresh=r.id in begin) for r in claimed]
                for session in starting:
                    if await move_session(conn, session, SessionPhase.PREPARING, now):
                        moved.append(session)
            first = await conn.execute(
                select(func.min(StepRow.next_at)).where(StepRow.state.in_(_OPEN), unheld)
            )
            next_at: datetime | None = first.scalar()
        self._start(steps)
        for session in moved:
            self.bus.notify(session)
        if next_at is None:
            return len(steps), IDLE
        return len(steps), max(0.0, min(IDLE, (next_at - _now()).total_seconds()))

    async def _startable(self, conn: AsyncConnection, sessions: list[str]) -> set[str]:
        """The ``sessions`` whose pending steps can start in this claim: those whose row no
        other transaction holds (on PostgreSQL; every one on SQLite, which has one writer).
        Waiting for a held one while holding its steps' rows could deadlock with, say, a
        cancel stopping those steps; skipped sessions' steps start in their own tasks."""
        if not sessions or self.db.is_sqlite:
            return set(sessions)
        free = await conn.execute(
            select(SessionRow.uuid)
            .where(SessionRow.uuid.in_(sessions))
            .order_by(SessionRow.uuid)
            .with_for_update(skip_locked=True)
        )
        return {r.uuid for r in free}

    @contextlib.asynccontextmanager
    async def changing(
        self, session: str, claimed: list[Step] | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A write transaction that changes ``session``: its followers wake when it commits,
        after the steps put in ``claimed`` during the transaction have started."""
        async with self.db.write() as conn:
            yield conn
        if claimed:
            self._start(claimed)
        self.bus.notify(session)

    async def _inputs(self, step: Step) -> dict[str, dict[str, Any]]:
        if step.inputs is not None or not step.after:
            return step.inputs or {}
        async with self.db.read() as conn:
            found = await conn.execute(
                select(StepRow.key, StepRow.result).where(
                    StepRow.session == step.session, StepRow.key.in_(step.after)
                )
            )
            return {r.key: dict(r.result or {}) for r in found}

    async def _run_step(self, step: Step) -> None:
        try:
            if step.kind == "release":
                await self.finisher.release(step)
                return
            view = StepView(
                step.session, step.key, step.kind, step.params, step.ref, await self._inputs(step)
            )
            if step.state == "SUBMITTED":
                await self._follow(step, view, 0.0)
            elif await self._submit(step, view):
                view = replace(view, ref=step.ref)
                await self._follow(step, view, self.timing.first(step.kind))
        except StepGone:
            pass
        except PermanentSiteError as exc:
            await self.finisher.fail(step, f"{step.key}: {exc}")
        except (TransientSiteError, TimeoutError) as exc:
            await self.finisher.retry(step, exc)
        except SiteError as exc:
            await self.finisher.fail(step, f"{step.key}: {exc}")
        except Exception as exc:
            log.exception("step %s failed unexpectedly", step.id)
            await self.finisher.retry(step, exc)
        finally:
            if len(self._running) >= self.cfg.concurrency:
                self.wake.set()  # this slot frees: due steps may be waiting for it

    async def _call(self, work: Awaitable[T]) -> T:
        async with asyncio.timeout(self.cfg.call_timeout):
            return await work

    async def _submit(self, step: Step, view: StepView) -> bool:
        """Submit the step (or recover a lost submission) and store its reference; True when
        it is still running afterwards (False: done at once)."""
        driver = DRIVERS[step.kind]
        ref = None
        if step.state == "SUBMITTING" and not step.fresh:
            ref = await self._call(driver.recover(self.services, view))
        if ref is None:
            if step.state == "PENDING":
                now = _now()
                async with self.changing(step.session) as conn:
                    await move_session(conn, step.session, SessionPhase.PREPARING, now)
                    started = step.started or now
                    await self._store(conn, step, state="SUBMITTING", started=started)
                    step.state, step.started = "SUBMITTING", started
            ref = await self._call(driver.submit(self.services, view))
        step.ref = ref
        step.submitted = time.monotonic()
        outcome = None
        if driver.settles_at_submit:  # usually done already: a poll now saves a wait
            try:
                outcome = await self._call(driver.poll(self.services, replace(view, ref=ref)))
                step.polls += 1
            except (TransientSiteError, TimeoutError):
                pass  # the submission stands: the next poll asks again
        now = _now()
        handed: list[Step] = []
        try:
            async with self.changing(step.session, handed) as conn:
                submitted = {"step": step.key, "kind": step.kind, "state": "SUBMITTED"}
                await append_event(conn, step.session, "step", submitted, now)
                await self._store(
                    conn,
                    step,
                    state="SUBMITTED",
                    ref=ref,
                    failures=0,
                    interval=self.cfg.poll_min,
                    progressed=now,
                    next_at=now + timedelta(seconds=self.cfg.poll_min),
                )
                step.state, step.interval, step.progressed = "SUBMITTED", self.cfg.poll_min, now
                step.failures = 0
                if outcome is not None and (outcome.done or step.moved(outcome)):
                    handed += await self._record(conn, step, outcome, now)
        except StepGone:
            # stopped while submitting: the release does not know this reference, so undo
            with contextlib.suppress(SiteError, TimeoutError):
                await self._call(driver.cancel(self.services, replace(view, ref=ref)))
            raise
        return outcome is None or not outcome.done

    async def _store(self, conn: AsyncConnection, step: Step, **values: Any) -> None:
        """Update the step's row if it is still open; :class:`StepGone` (which rolls the
        transaction back) if someone else has closed it."""
        done = await conn.execute(
            update(StepRow).where(StepRow.id == step.id, StepRow.state.in_(_OPEN)).values(**values)
        )
        if done.rowcount != 1:
            raise StepGone(step.id)

    async def _still_open(self, step: Step) -> bool:
        async with self.db.read() as conn:
            found = await conn.execute(select(StepRow.state).where(StepRow.id == step.id))
            return found.scalar() == step.state

    async def _follow(self, step: Step, view: StepView, delay: float) -> None:
        """Poll the step until it is done, or until it is better left to the table.

        The step's row is read before a poll only when its session changed meanwhile (a
        cancel, say); a change made by another replica is found by the next write instead.
        """
        driver = DRIVERS[step.kind]
        held_until = time.monotonic() + self.cfg.lease.total_seconds() / 2
        running_age = 0.0
        with self.bus.subscribe(step.session) as changes:
            while True:
                if delay > HOLD or time.monotonic() + delay > held_until:
                    await self._hand_back(step, delay)
                    return
                await asyncio.sleep(delay)
                if changes.is_set():
                    changes.clear()
                    if not await self._still_open(step):
                        return
                outcome = await self._call(driver.poll(self.services, view))
                step.polls += 1
                step.failures = 0  # the budget is for failures in a row (written when next due)
                now = _now()
                age = time.monotonic() - step.submitted if step.submitted is not None else None
                moved = step.moved(outcome)
                if not outcome.done and not moved:
                    since = step.progressed or step.started or now
                    if now - since > self.cfg.stall_timeout:
                        raise PermanentSiteError(
                            "engine", step.key, f"no progress for {now - since}"
                        )
                if outcome.done or moved:
                    handed: list[Step] = []
                    async with self.changing(step.session, handed) as conn:
                        handed += await self._record(conn, step, outcome, now)
                    changes.clear()  # this worker's own change: no need to look again
                if outcome.done:
                    if age is not None:
                        self.timing.learn(step.kind, running_age, age)
                    return
                running_age = age or 0.0
                delay, step.interval = self.timing.next(step.kind, age, step.interval, moved)
                step.message = outcome.message

    async def _record(
        self, conn: AsyncConnection, step: Step, outcome: Outcome, now: datetime
    ) -> list[Step]:
        """Write a poll that saw progress or completion; the steps it unblocked that this
        worker claimed, to start once the transaction commits."""
        await append_event(conn, step.session, "progress", progress_event(step, outcome), now)
        values: dict[str, Any] = {
            "polls": step.polls,
            "failures": 0,
            "bytes_done": outcome.bytes_done,
            "bytes_total": outcome.bytes_total,
            "message": outcome.message[:2000] or None,
            "progressed": now,
        }
        if outcome.done:
            values.update(state="DONE", result=outcome.result, finished=now, lease_until=None)
        await self._store(conn, step, **values)
        step.bytes_done, step.bytes_total = outcome.bytes_done, outcome.bytes_total
        step.progressed = now
        if not outcome.done:
            return []
        step.state = "DONE"
        free = self.cfg.concurrency - len(self._running)
        return await self.finisher.advance(conn, step, outcome, now, free)

    async def _hand_back(self, step: Step, delay: float) -> None:
        """Leave the step to the table: its next poll in ``delay`` seconds, by any worker."""
        async with self.db.write() as conn:
            await self._store(
                conn,
                step,
                polls=step.polls,
                failures=0,
                interval=step.interval,
                message=step.message[:2000] or None,
                lease_until=None,
                next_at=_now() + timedelta(seconds=delay),
            )
        if delay < IDLE:
            self.wake.set()
