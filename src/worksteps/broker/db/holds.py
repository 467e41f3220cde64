"""The offer path's storage: follow a site's bookings, store an offer set with its holds.

This is the broker's hot path (every ``POST /requests``), so it bypasses SQLAlchemy's ORM and
async layers and speaks to the driver directly, in as few statements as the engine allows.
It never reads a request's window of the calendar: the caller keeps the whole calendar in
memory (:class:`~worksteps.broker.planner.ledger.Ledger`) and the store hands it the bookings
that changed since it last looked (every change is stamped by a trigger, see migration 0006).

- SQLite (:mod:`.holds_sqlite`): one call into a thread that owns a plain ``sqlite3``
  connection runs the whole placement, from ``BEGIN IMMEDIATE`` to ``COMMIT`` (SQLite has one
  writer; the process's writers queue on :attr:`Database.write_lock` first, so none of them
  waits in SQLite's busy handler).
- PostgreSQL (:mod:`.holds_postgres`): read the changes and plan outside any lock, then one
  statement inserts the offer set, sessions, components and holds only if ``sites.version`` is
  still the one read with the changes (an optimistic check, retried on conflict; the last
  attempt takes the ``sites`` row lock first so it cannot lose). Replicas sharing one database
  therefore never plan against the same free capacity.

Invariant of every store: a placement's holds are stored only if no other hold for the same
site was stored between reading the changes and storing them; ``sites.version`` grows with
every placement that stores holds. Releasing capacity (reject, cancel, expiry) needs no such
check: planning on a calendar that still shows a released hold only offers less.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import make_url

from worksteps.broker.planner.ledger import StoredBooking
from worksteps.core.database import Database

__all__ = [
    "BookingChanges",
    "Decide",
    "HoldStore",
    "NewHold",
    "NewOfferSet",
    "Since",
    "open_hold_store",
]


@dataclass(frozen=True, slots=True)
class BookingChanges:
    """Bookings of a site as they are now: with ``complete``, every booking that counts (a
    full load); else those that changed since the ``since`` asked for, whatever their state.
    ``upto`` is the ``since`` to ask for next time."""

    rows: list[StoredBooking]
    complete: bool
    upto: int


@dataclass(frozen=True, slots=True)
class NewHold:
    """An offer to store: its session (``document`` is its JSON text) and the hold it places."""

    session: str
    document: str
    start: datetime
    end: datetime
    resources: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class NewOfferSet:
    """An offer set to store (``body`` is its JSON text), with its offers and their
    components as ``(uuid, session, family)``."""

    uuid: str
    site: str
    owner: str | None
    created: datetime
    expires: datetime
    result: str
    body: str
    holds: list[NewHold] = field(default_factory=list)
    components: list[tuple[str, str, str]] = field(default_factory=list)


Since = Callable[[], "int | None"]
"""Where the changes to read begin (an earlier ``upto``), asked once the store is ready to
read: placements wait for each other, and each moves it on."""

Decide = Callable[[BookingChanges], NewOfferSet]
"""Takes in the changes (every one of them: ``since()`` returns their ``upto`` afterwards),
plans, and returns the offer set to store. Quick and without I/O: it may run in the store's
thread, and more than once when an optimistic store has to read again."""


class HoldStore(Protocol):
    """Where offers and their holds are kept (one per broker process, for one database)."""

    async def place(self, site: str, since: Since, now: datetime, decide: Decide) -> NewOfferSet:
        """Read ``site``'s bookings changed since ``since()`` (``None``: all that count at
        ``now``), let ``decide`` make an offer set and store it. Its holds are stored only if
        no other hold of the site was stored since the read; otherwise the store reads the
        newer changes and calls ``decide`` again. Returns what was stored."""
        ...

    async def close(self) -> None:
        """Release connections and threads; the store is not used afterwards."""
        ...


def open_hold_store(db: Database) -> HoldStore:
    """The store for ``db``'s engine, using the same database (no connection is made yet)."""
    url = make_url(db.url)
    if db.is_sqlite:
        from worksteps.broker.db.holds_sqlite import SqliteHoldStore

        if not url.database or url.database == ":memory:":
            raise ValueError("the offer store needs an SQLite file, not an in-memory database")
        return SqliteHoldStore(url.database, db.write_lock)
    from worksteps.broker.db.holds_postgres import PostgresHoldStore

    return PostgresHoldStore(url.set(drivername="postgresql").render_as_string(False))
