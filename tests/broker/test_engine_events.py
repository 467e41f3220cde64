"""The event log under concurrent writers: every reader sees each session's events gap-free
and in order, on SQLite and on PostgreSQL (where sequence values can commit out of order),
steps finishing at once never leave the step that needs both waiting, and the migration
numbers events written before it."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from running import RunningBroker
from sqlalchemy import select, text, update

from worksteps.broker.db.migrate import upgrade
from worksteps.broker.db.tables import EventRow, SessionRow, StepRow
from worksteps.broker.engine.events import append_event, events_after
from worksteps.broker.engine.progress import NEVER, schedule_preparation, wake_dependents
from worksteps.broker.settings import EngineSettings
from worksteps.core.database import Database

WRITERS = 40


def _offer(broker: RunningBroker, make_request: Callable[..., dict[str, Any]]) -> str:
    uuid: str = broker.offers(make_request())["offers"][0]["meta"]["uuid"]
    return uuid


async def _write_and_read(url: str, session: str) -> tuple[list[int], list[int]]:
    """``WRITERS`` transactions append one event each, holding their transactions open for a
    random while after appending (so that on PostgreSQL a later one would commit first if
    nothing ordered them), while a reader follows the log from its last ``seq``."""
    db = Database(url, pool_size=WRITERS // 2)
    rng = random.Random(5)
    pauses = [rng.uniform(0, 0.03) for _ in range(WRITERS)]
    written: list[int] = []

    async def writer(n: int) -> None:
        async with db.write() as conn:
            await append_event(conn, session, "test", {"n": n}, datetime.now(UTC))
            await asyncio.sleep(pauses[n])
        written.append(n)

    read: list[int] = []
    seqs: list[int] = []

    async def reader() -> None:
        cursor = 0
        while len(read) < WRITERS:
            for event in await events_after(db, session, cursor):
                cursor = int(event["id"])
                seqs.append(cursor)
                if event["type"] == "test":
                    read.append(int(event["n"]))
            await asyncio.sleep(0.002)

    try:
        async with asyncio.timeout(60):
            follower = asyncio.create_task(reader())
            await asyncio.gather(*(writer(n) for n in range(WRITERS)))
            await follower
    finally:
        await db.dispose()
    assert sorted(written) == list(range(WRITERS))
    return read, seqs


def test_a_follower_sees_every_event_once_in_order(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    uuid = _offer(broker, make_request)
    read, seqs = asyncio.run(_write_and_read(broker.settings.database_url, uuid))
    assert sorted(read) == list(range(WRITERS)), "an event was skipped or seen twice"
    assert seqs == list(range(1, len(seqs) + 1)), "the sequence numbers have a gap"
    # the API serves the same log: an SSE stream resumed half-way sends the second half
    half = seqs[len(seqs) // 2]
    received = _sse_ids(broker, uuid, after=half, count=len(seqs) - half)
    assert received == list(range(half + 1, len(seqs) + 1))


def _sse_ids(broker: RunningBroker, uuid: str, after: int, count: int) -> list[int]:
    ids: list[int] = []
    with (
        httpx.Client(base_url=broker.url, timeout=20) as client,
        client.stream(
            "GET", f"/sessions/{uuid}/events", headers={"Last-Event-ID": str(after)}
        ) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("id:"):
                ids.append(int(line[3:]))
            elif line.startswith("data:"):
                assert json.loads(line[5:])["id"] == ids[-1]
            if len(ids) == count:
                break
    return ids


def test_steps_finishing_at_once_both_count(
    broker: RunningBroker, make_request: Callable[..., dict[str, Any]]
) -> None:
    """Two steps of one session finish in concurrent transactions, each appending its event
    first (as the worker does): the step that waits for both is made due, whatever the order."""
    uuid = _offer(broker, make_request)

    async def run() -> tuple[datetime, list[str]]:
        db = Database(broker.settings.database_url)
        now = datetime.now(UTC)
        try:
            async with db.write() as conn:
                doc = await conn.execute(select(SessionRow.body).where(SessionRow.uuid == uuid))
                body = doc.scalar_one()
                booking = (now, now + timedelta(hours=1))
                await schedule_preparation(conn, uuid, body, "u", EngineSettings(), now, booking)
                await conn.execute(  # the notebook's launch waits for area, notebook, image
                    update(StepRow)
                    .where(StepRow.session == uuid, StepRow.key == "area")
                    .values(state="DONE", result={})
                )
            looked = asyncio.Event()

            async def finish(key: str, pause: float) -> list[str]:
                async with db.write() as conn:
                    await append_event(conn, uuid, "progress", {"step": key}, now)
                    await conn.execute(
                        update(StepRow)
                        .where(StepRow.session == uuid, StepRow.key == key)
                        .values(state="DONE", result={})
                    )
                    woken = await wake_dependents(conn, uuid, now)
                    looked.set()
                    await asyncio.sleep(pause)  # the other one finishes now, if it can
                return woken.left

            first = asyncio.create_task(finish("place:notebook", 0.3))
            await looked.wait()  # the first has looked for its dependents and not committed
            second = await finish("image", 0.0)
            made_due = [*(await first), *second]
            async with db.read() as conn:
                due = (
                    await conn.execute(
                        select(StepRow.next_at).where(
                            StepRow.session == uuid, StepRow.key == "launch"
                        )
                    )
                ).scalar_one()
            return due, made_due
        finally:
            await db.dispose()

    due, made_due = asyncio.run(run())
    assert due != NEVER, "the launch was left waiting for steps that had both finished"
    assert made_due == [f"{uuid}:launch"], made_due


def test_the_migration_numbers_earlier_events(database_url: str) -> None:
    async def run() -> tuple[list[tuple[str, int, int]], dict[str, int]]:
        db = Database(database_url)
        try:
            await upgrade(db, "0003")
            now = datetime.now(UTC)
            async with db.write() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO offersets (uuid, site, created, expires, result, body) "
                        "VALUES ('o', 's', :t, :t, 'YES', :b)"
                    ),
                    {"t": now, "b": "{}"},
                )
                for name in ("a", "b", "c"):
                    await conn.execute(
                        text(
                            "INSERT INTO sessions (uuid, offerset, site, phase, version, "
                            "created, modified, expires, body) "
                            "VALUES (:u, 'o', 's', 'OFFERED', 0, :t, :t, :t, :b)"
                        ),
                        {"u": name, "t": now, "b": "{}"},
                    )
                for session in "abacbaa":  # interleaved, as concurrent sessions write them
                    await conn.execute(
                        text(
                            "INSERT INTO events (session, time, type, body) "
                            "VALUES (:s, :t, 'phase', :b)"
                        ),
                        {"s": session, "t": now, "b": "{}"},
                    )
            await upgrade(db)
            async with db.read() as conn:
                events = [
                    (r.session, r.id, r.seq)
                    for r in await conn.execute(
                        select(EventRow.session, EventRow.id, EventRow.seq).order_by(EventRow.id)
                    )
                ]
                counters = {
                    r.uuid: r.events
                    for r in await conn.execute(select(SessionRow.uuid, SessionRow.events))
                }
            return events, counters
        finally:
            await db.dispose()

    events, counters = asyncio.run(run())
    assert [(s, seq) for s, _, seq in events] == [
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("c", 1),
        ("b", 2),
        ("a", 3),
        ("a", 4),
    ]
    assert counters == {"a": 4, "b": 2, "c": 1}
