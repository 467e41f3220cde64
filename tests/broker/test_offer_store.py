"""The offer path's store and the calendar in memory, on SQLite and PostgreSQL: two brokers on
one database, releases made elsewhere, refusals beside offers, lost races and lost connections."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from worksteps.broker.db.holds import (
    BookingChanges,
    Decide,
    HoldStore,
    NewHold,
    NewOfferSet,
    Since,
    open_hold_store,
)
from worksteps.broker.db.holds_postgres import PostgresHoldStore
from worksteps.broker.db.migrate import upgrade
from worksteps.broker.db.tables import BookingRow
from worksteps.broker.intake import Intake, take_in
from worksteps.broker.offersets import OfferSetMaker
from worksteps.broker.sessions import apply_update, get_offer_set
from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database
from worksteps.schema import EnumValueUpdate, ExecutionRequest
from worksteps.schema.isotime import Interval

NOTEBOOK = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/jupyter-notebook.yaml"
COMPUTE = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml"
CAPACITY = {"cores": 8, "memory": 32, "gpus": 0, "storage": 100}
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
async def setup(database_url: str) -> AsyncIterator[tuple[Database, BrokerSettings]]:
    settings = BrokerSettings(
        site="store-test",
        database_url=database_url,
        capacity=CAPACITY,  # type: ignore[arg-type]
        preparation=timedelta(0),
        max_offers=2,
    )
    db = Database(database_url)
    await upgrade(db)
    try:
        yield db, settings
    finally:
        await db.dispose()


def intake(settings: BrokerSettings, cores: int, start: int = 60, window: int = 0) -> Intake:
    begins = NOW + timedelta(minutes=start)
    doc: dict[str, Any] = {
        "executable": {"kind": NOTEBOOK, "location": "https://example.org/n.ipynb"},
        "compute": {"kind": COMPUTE, "cores": {"min": cores}, "memory": {"min": 1}},
        "schedule": {
            "requested": {
                "duration": "PT1H",
                "start": Interval(begins, begins + timedelta(minutes=window)),
            }
        },
    }
    return take_in(ExecutionRequest.model_validate(doc), settings, NOW)


async def held_cores(db: Database) -> int:
    """Cores held or booked at the (single) instant every request here asks for."""
    at = NOW + timedelta(minutes=90)
    async with db.read() as conn:
        rows = list(await conn.execute(select(BookingRow)))
    return sum(
        r.cores
        for r in rows
        if r.start <= at < r.end
        and (r.state == "BOOKED" or (r.state == "HELD" and r.hold_expires > NOW))
    )


async def test_two_brokers_on_one_database_never_hold_more_than_there_is(
    setup: tuple[Database, BrokerSettings],
) -> None:
    db, settings = setup
    makers = [OfferSetMaker(open_hold_store(db), settings) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(
                makers[i % 2].create(intake(settings, 1), base_url="http://x/", now=NOW)
                for i in range(20)
            )
        )
        yes = [created for created, _ in results if created.result == "YES"]
        assert len(yes) == 8  # one core each, exactly once per core, across both brokers
        assert await held_cores(db) == 8
        refused = next(body for created, body in results if created.result == "NO")
        assert "cores" in refused["meta"]["messages"][0]["message"]
    finally:
        for maker in makers:
            await maker.close()


async def test_a_release_made_elsewhere_frees_the_capacity_for_the_next_request(
    setup: tuple[Database, BrokerSettings],
) -> None:
    db, settings = setup
    first, second = (OfferSetMaker(open_hold_store(db), settings) for _ in range(2))
    try:
        created, _ = await first.create(intake(settings, 8), base_url="http://x/", now=NOW)
        assert created.result == "YES"
        blocked, _ = await second.create(intake(settings, 8), base_url="http://x/", now=NOW)
        assert blocked.result == "NO"
        # rejected through the sessions service (SQLAlchemy), not through either store
        reject = EnumValueUpdate(kind="uri:enum-value-update", path="phase", value="REJECTED")
        await apply_update(db, created.offers[0].uuid, reject, NOW)
        again, _ = await second.create(intake(settings, 8), base_url="http://x/", now=NOW)
        assert again.result == "YES"
        stored = await get_offer_set(db, again.uuid, NOW)
        assert [o["meta"]["uuid"] for o in stored["offers"]] == [again.offers[0].uuid]
        assert stored["offers"][0]["compute"]["cores"] == {"min": 8, "max": 8}
    finally:
        await first.close()
        await second.close()


async def test_holds_lapse_in_memory_without_the_sweeper(
    setup: tuple[Database, BrokerSettings],
) -> None:
    db, settings = setup
    maker = OfferSetMaker(open_hold_store(db), settings)
    try:
        assert (await maker.create(intake(settings, 8), base_url="x/", now=NOW))[0].result == "YES"
        later = NOW + settings.offer_ttl + timedelta(seconds=1)
        created, _ = await maker.create(intake(settings, 8), base_url="x/", now=later)
        assert created.result == "YES"
    finally:
        await maker.close()


async def test_refusals_and_offers_interleave(setup: tuple[Database, BrokerSettings]) -> None:
    db, settings = setup
    maker = OfferSetMaker(open_hold_store(db), settings)
    try:
        requests = [intake(settings, 9 if i % 3 == 0 else 1, window=600) for i in range(24)]
        results = await asyncio.gather(
            *(maker.create(r, base_url="http://x/", now=NOW) for r in requests)
        )
        for request, (created, body) in zip(requests, results, strict=True):
            too_big = request.demand.minimum.cores > 8
            assert created.result == ("NO" if too_big else "YES"), body
    finally:
        await maker.close()


# -- PostgreSQL: the optimistic check and the connection ---------------------------------------


def _dsn(db: Database) -> str:
    return make_url(db.url).set(drivername="postgresql").render_as_string(False)


def _bump_version_elsewhere(dsn: str, site: str) -> None:
    """What another replica's placement does to ``sites``, from another thread and loop."""

    async def bump() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("UPDATE sites SET version = version + 1 WHERE name = $1", site)
        finally:
            await conn.close()

    thread = threading.Thread(target=asyncio.run, args=(bump(),))
    thread.start()
    thread.join()


def _offer_set(uuid: str, now: datetime) -> NewOfferSet:
    start = now + timedelta(hours=1)
    hold = NewHold(f"{uuid[:-4]}5555", "{}", start, start + timedelta(hours=1), (1, 1, 0, 0))
    return NewOfferSet(
        uuid, "store-test", None, now, now + timedelta(minutes=5), "YES", "{}", [hold], []
    )


@pytest.mark.parametrize("lost", [1, 3])
async def test_postgres_reads_again_after_losing_a_race(
    setup: tuple[Database, BrokerSettings], lost: int
) -> None:
    """Lost once: the second optimistic attempt stores. Lost three times: the last attempt
    locks the site first and cannot lose."""
    db, _ = setup
    if db.is_sqlite:
        pytest.skip("SQLite takes its write lock before reading: there is no race to lose")
    store = PostgresHoldStore(_dsn(db))
    calls: list[BookingChanges] = []

    def decide(changes: BookingChanges) -> NewOfferSet:
        calls.append(changes)
        if len(calls) <= lost:
            _bump_version_elsewhere(_dsn(db), "store-test")
        return _offer_set(f"00000000-0000-0000-0000-00000000000{len(calls)}", NOW)

    try:
        stored = await store.place(
            "store-test", lambda: calls[-1].upto if calls else None, NOW, decide
        )
    finally:
        await store.close()
    assert len(calls) == lost + 1
    assert calls[0].complete and not calls[1].complete
    async with db.read() as conn:
        kept = (await conn.execute(text("SELECT uuid FROM offersets"))).scalars().all()
        version = (await conn.execute(text("SELECT version FROM sites"))).scalar_one()
    assert kept == [stored.uuid]  # only the attempt that won was stored
    assert version == lost + 1


async def test_postgres_store_reconnects_after_losing_its_connection(
    setup: tuple[Database, BrokerSettings],
) -> None:
    db, settings = setup
    if db.is_sqlite:
        pytest.skip("the SQLite store opens a file, not a server connection")
    maker = OfferSetMaker(open_hold_store(db), settings)
    try:
        assert (await maker.create(intake(settings, 1), base_url="x/", now=NOW))[0].result == "YES"
        admin = await asyncpg.connect(_dsn(db))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = ''"
            )
        finally:
            await admin.close()
        assert killed >= 1
        created, _ = await maker.create(intake(settings, 1), base_url="x/", now=NOW)
        assert created.result == "YES"
        assert await held_cores(db) == 2
    finally:
        await maker.close()


class _Counting:
    """A store that counts the full loads it hands out (the real store does the work)."""

    def __init__(self, store: HoldStore) -> None:
        self.store = store
        self.loads = 0

    async def place(self, site: str, since: Since, now: datetime, decide: Decide) -> NewOfferSet:
        def counted(changes: BookingChanges) -> NewOfferSet:
            self.loads += changes.complete
            return decide(changes)

        return await self.store.place(site, since, now, counted)

    async def close(self) -> None:
        await self.store.close()


async def test_concurrent_first_requests_load_the_calendar_once(
    setup: tuple[Database, BrokerSettings],
) -> None:
    db, settings = setup
    store = _Counting(open_hold_store(db))
    maker = OfferSetMaker(store, settings)
    try:
        results = await asyncio.gather(
            *(maker.create(intake(settings, 1), base_url="x/", now=NOW) for _ in range(8))
        )
        assert all(created.result == "YES" for created, _ in results)
        assert store.loads == 1  # the others asked for the changes since, once it was their turn
    finally:
        await maker.close()
