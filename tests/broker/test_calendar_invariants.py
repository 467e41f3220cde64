"""Random sequences of requests, accepts, rejects, cancels and expiries, through the broker's
own services and database: capacity is never overcommitted at any instant, and every offer lies
inside its window and within [min, max]. Requests go to two offer set makers on the same
database (two broker replicas, each following the calendar in memory), on SQLite and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid as uuids
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select

from worksteps.broker.db.holds import open_hold_store
from worksteps.broker.db.migrate import upgrade
from worksteps.broker.db.tables import BookingRow
from worksteps.broker.intake import take_in
from worksteps.broker.offersets import OfferSetMaker
from worksteps.broker.sessions import apply_update, expire_offers
from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database
from worksteps.core.errors import Conflict
from worksteps.schema import EnumValueUpdate, ExecutionRequest
from worksteps.schema.isotime import Interval

NOTEBOOK = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/jupyter-notebook.yaml"
COMPUTE = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml"
CAPACITY = {"cores": 12, "memory": 24, "gpus": 0, "storage": 50}
PG_DSN = os.environ.get("WORKSTEPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _update(phase: str) -> EnumValueUpdate:
    return EnumValueUpdate(kind="uri:enum-value-update", path="phase", value=phase)


class BrokerCalendar(RuleBasedStateMachine):
    engine = "sqlite"

    @initialize()
    def start(self) -> None:
        self.runner = asyncio.Runner()
        self.tmp = tempfile.TemporaryDirectory()
        self.pg_name: str | None = None
        url = f"sqlite:///{Path(self.tmp.name)}/p.sqlite"
        if self.engine == "postgres":
            self.pg_name = f"wst_{uuids.uuid4().hex[:12]}"
            self.runner.run(_pg_admin(f'CREATE DATABASE "{self.pg_name}"'))
            url = PG_DSN.rsplit("/", 1)[0] + f"/{self.pg_name}"
        self.settings = BrokerSettings(
            site="prop",
            database_url=url,
            capacity=CAPACITY,  # type: ignore[arg-type]
            offer_ttl=timedelta(minutes=5),
            preparation=timedelta(minutes=1),
            max_offers=4,
        )
        self.db = Database(self.settings.database_url)
        self.runner.run(upgrade(self.db))
        self.makers = [
            OfferSetMaker(open_hold_store(self.db), self.settings),
            OfferSetMaker(open_hold_store(self.db), self.settings),
        ]
        self.now = datetime(2030, 1, 1, tzinfo=UTC)
        self.open: list[str] = []
        self.accepted: list[str] = []

    def teardown(self) -> None:
        if hasattr(self, "runner"):
            for maker in self.makers:
                self.runner.run(maker.close())
            self.runner.run(self.db.dispose())
            if self.pg_name:
                drop = f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'
                self.runner.run(_pg_admin(drop))
            self.runner.close()
            self.tmp.cleanup()

    @rule(
        cores=st.integers(1, 14),
        cores_extra=st.integers(0, 6),
        memory=st.integers(1, 26),
        memory_extra=st.integers(0, 8),
        storage=st.integers(0, 30),
        offset=st.integers(0, 240),
        window=st.integers(0, 300),
        duration=st.integers(1, 240),
        replica=st.integers(0, 1),
    )
    def request(
        self,
        cores: int,
        cores_extra: int,
        memory: int,
        memory_extra: int,
        storage: int,
        offset: int,
        window: int,
        duration: int,
        replica: int,
    ) -> None:
        start = self.now + timedelta(minutes=offset)
        doc = {
            "executable": {"kind": NOTEBOOK, "location": "https://example.org/n.ipynb"},
            "compute": {
                "kind": COMPUTE,
                "cores": {"min": cores, "max": cores + cores_extra},
                "memory": {"min": memory, "max": memory + memory_extra},
            },
            "schedule": {
                "requested": {
                    "duration": f"PT{duration}M",
                    "start": Interval(start, start + timedelta(minutes=window)),
                }
            },
        }
        if storage:
            doc["storage"] = [
                {
                    "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/"
                    "v1.0/kinds/storage/simple-storage-resource.yaml",
                    "size": {"min": storage},
                }
            ]
        intake = take_in(ExecutionRequest.model_validate(doc), self.settings, self.now)
        created, _ = self.runner.run(
            self.makers[replica].create(intake, base_url="http://x/", now=self.now)
        )
        for offer in created.offers:
            slot = offer.slot
            assert intake.window_start <= slot.start <= intake.window_end
            assert slot.start >= self.now + self.settings.preparation or not intake.refusals
            assert slot.end - slot.start == timedelta(minutes=duration)
            assert cores <= slot.resources.cores <= cores + cores_extra
            assert memory <= slot.resources.memory <= memory + memory_extra
            assert slot.resources.storage >= storage
            self.open.append(offer.uuid)

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), phase=st.sampled_from(["ACCEPTED", "REJECTED", "CANCELLED"]))
    def decide(self, data: st.DataObject, phase: str) -> None:
        uuid = data.draw(st.sampled_from(self.open))
        try:
            self.runner.run(apply_update(self.db, uuid, _update(phase), self.now))
        except Conflict:
            return  # expired, or a sibling was accepted first: refused, nothing changed
        self.open.remove(uuid)
        if phase == "ACCEPTED":
            self.accepted.append(uuid)

    @precondition(lambda self: bool(self.accepted))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        uuid = data.draw(st.sampled_from(self.accepted))
        self.runner.run(apply_update(self.db, uuid, _update("CANCELLED"), self.now))
        self.accepted.remove(uuid)

    @rule(minutes=st.integers(1, 12), sweep=st.booleans())
    def time_passes(self, minutes: int, sweep: bool) -> None:
        self.now += timedelta(minutes=minutes)
        if sweep:
            self.runner.run(expire_offers(self.db, self.now))

    @invariant()
    def never_overcommitted(self) -> None:
        if not hasattr(self, "runner"):
            return

        async def load() -> list[BookingRow]:
            async with self.db.read() as conn:
                return list(await conn.execute(select(BookingRow)))  # type: ignore[arg-type]

        rows = [
            r
            for r in self.runner.run(load())
            if r.state == "BOOKED" or (r.state == "HELD" and r.hold_expires > self.now)
        ]
        for instant in {r.start for r in rows}:
            live = [r for r in rows if r.start <= instant < r.end]
            for name, limit in CAPACITY.items():
                assert sum(getattr(r, name) for r in live) <= limit, (name, instant)


TestBrokerCalendar = BrokerCalendar.TestCase
TestBrokerCalendar.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class PostgresBrokerCalendar(BrokerCalendar):
    engine = "postgres"


TestPostgresBrokerCalendar = pytest.mark.postgres(PostgresBrokerCalendar.TestCase)
TestPostgresBrokerCalendar.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
