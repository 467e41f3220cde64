"""Two broker processes (uvicorn) on one PostgreSQL database and one site of emulators: each
preparation step is done once, by one of them, and the site is never booked twice over."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from reliability_broker import BrokerProcess
from reliability_chaos import FlakyPort
from reliability_site import (
    CORES,
    MEMORY,
    SUBMISSIONS,
    BrokerClient,
    broker_settings,
    job_request,
    messages,
    replications,
    start_site,
    submissions,
    unlike_undisturbed,
    whole_site,
)
from sqlalchemy import or_, select

from worksteps.broker.db.tables import BookingRow
from worksteps.core.database import Database
from worksteps.emulators.rig import SiteRig

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
]

SESSIONS = 50
THREADS = 16
ROUNDS = 3


@dataclass
class Pair:
    """Two brokers of one site, each reaching Skaha through a relay of its own (no faults:
    the relays only show that both brokers' engines did work)."""

    rig: SiteRig
    brokers: tuple[BrokerProcess, BrokerProcess]
    skaha_relays: tuple[FlakyPort, FlakyPort]

    @property
    def clients(self) -> tuple[BrokerClient, BrokerClient]:
        return BrokerClient(self.brokers[0].url), BrokerClient(self.brokers[1].url)


@pytest.fixture
def pair(tmp_path: Path, database_url: str) -> Iterator[Pair]:
    rig = start_site(tmp_path / "site", SESSIONS)
    relays = tuple(
        FlakyPort(rig.services_settings.skaha.url, reset_rate=0, outage_every=None).start()
        for _ in range(2)
    )
    brokers = []
    try:
        for name, relay in zip(("a", "b"), relays, strict=True):
            services = rig.services_settings.model_copy(
                update={"skaha": rig.services_settings.skaha.model_copy(update={"url": relay.url})}
            )
            settings = broker_settings(rig, database_url, services=services)
            brokers.append(BrokerProcess(settings, tmp_path / "brokers", name))
        with ThreadPoolExecutor(2) as pool:  # both start at once: migrations race, too
            list(pool.map(BrokerProcess.start, brokers))
        yield Pair(rig, (brokers[0], brokers[1]), (relays[0], relays[1]))
    finally:
        for broker in brokers:
            broker.stop()
        for relay in relays:
            relay.stop()
        rig.stop()


def test_every_step_is_done_once_by_one_of_two_brokers(pair: Pair) -> None:
    clients = pair.clients
    with ThreadPoolExecutor(8) as pool:  # accepted through both, alternately
        uuids = list(
            pool.map(lambda i: clients[i % 2].open(job_request(pair.rig, i)), range(SESSIONS))
        )
    docs = clients[1].sessions(uuids, timeout=180)
    why = {u: f"{d['phase']}: {messages(d)}" for u, d in docs.items() if d["phase"] != "COMPLETED"}
    assert not why, why
    unlike = {u: w for u in uuids if (w := unlike_undisturbed(clients[0].events(u)))}
    assert not unlike, unlike
    # each external submission reached the site once per session, and no more
    assert submissions(pair.rig) == dict.fromkeys(SUBMISSIONS, SESSIONS)
    assert set(replications(pair.rig).values()) == {1}
    # and both brokers' engines did some of it (only the engine talks to Skaha)
    assert all(relay.counts["accepted"] > 0 for relay in pair.skaha_relays)


@dataclass(frozen=True)
class Held:
    state: str
    start: datetime
    end: datetime
    cores: int
    memory: int


def _counted(url: str, site: str) -> list[Held]:
    """The bookings that hold capacity now: booked, or held by an offer not yet expired."""

    async def read() -> list[Held]:
        db = Database(url)
        try:
            async with db.read() as conn:
                now = datetime.now(UTC)
                rows = await conn.execute(
                    select(BookingRow).where(
                        BookingRow.site == site,
                        or_(
                            BookingRow.state == "BOOKED",
                            (BookingRow.state == "HELD") & (BookingRow.hold_expires > now),
                        ),
                    )
                )
                return [Held(r.state, r.start, r.end, r.cores, r.memory) for r in rows]
        finally:
            await db.dispose()

    return asyncio.run(read())


def _peak(bookings: list[Held]) -> tuple[int, int, datetime | None]:
    """The most cores and memory in use at any instant, and the first instant of the most."""
    edges: list[tuple[datetime, int, int, int]] = []
    for b in bookings:
        edges += [(b.start, 1, b.cores, b.memory), (b.end, 0, -b.cores, -b.memory)]
    cores = memory = top_cores = top_memory = 0
    when = None
    for at, _, dc, dm in sorted(edges):  # at one instant, ends (0) come before starts (1)
        cores, memory = cores + dc, memory + dm
        if cores > top_cores or memory > top_memory:
            top_cores, top_memory, when = max(cores, top_cores), max(memory, top_memory), at
    return top_cores, top_memory, when


def test_concurrent_offers_and_accepts_at_two_brokers_never_book_the_site_twice(
    pair: Pair, database_url: str
) -> None:
    clients = pair.clients
    gate = threading.Barrier(THREADS)
    later = datetime.now(UTC) + timedelta(hours=1)
    window = f"{later.strftime('%Y-%m-%dT%H:%M:%SZ')}/PT4H"  # 24 slots of 10 minutes
    outcomes: list[str] = []
    races: list[tuple[int, int]] = []  # (accepted, refused) of two siblings accepted at once

    def ask(worker: int) -> None:
        rng = random.Random(worker)
        gate.wait()
        for round_ in range(ROUNDS):
            share = rng.choice((1, 1, 2, 4))  # mostly the whole site
            doc: dict[str, Any] = whole_site(pair.rig)
            doc["compute"]["cores"] = {"min": CORES // share}
            doc["compute"]["memory"] = {"min": MEMORY // share}
            doc["schedule"]["requested"]["start"] = window  # nothing starts during the test
            asked, other = clients[(worker + round_) % 2], clients[(worker + round_ + 1) % 2]
            offerset = asked.offer(doc)
            outcomes.append(offerset["result"])
            offers = offerset.get("offers") or []
            if len(offers) >= 2 and rng.random() < 0.5:  # two siblings accepted at once, one each
                uuids = [offers[0]["meta"]["uuid"], offers[1]["meta"]["uuid"]]
                with ThreadPoolExecutor(2) as both:
                    codes = list(
                        both.map(lambda c, u: c.accept(u).status_code, (asked, other), uuids)
                    )
                races.append((codes.count(200), codes.count(409)))
            elif offers:
                code = other.accept(rng.choice(offers)["meta"]["uuid"]).status_code
                assert code == 200, code

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(ask, range(THREADS)))
    assert outcomes.count("YES") >= THREADS, outcomes  # the site was really contended
    assert races and all(race == (1, 1) for race in races), races
    counted = _counted(database_url, "rel")
    assert len(counted) >= THREADS
    cores, memory, when = _peak(counted)
    assert cores <= CORES and memory <= MEMORY, (cores, memory, when)
    assert all(b.state == "BOOKED" for b in counted), "every offer set was answered"
