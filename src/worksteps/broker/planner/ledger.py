"""The ledger: a site's whole calendar kept in memory and brought up to date by changed rows.

Reading every booking that overlaps a request's window costs time in proportion to the
bookings (about 1,300 rows per request at 100k bookings). The ledger instead holds the
bookings that count (confirmed, or held and not yet lapsed) and is told what changed since it
last looked: each stored booking comes back as a :class:`StoredBooking` with its current
state, and :meth:`Ledger.apply` replaces whatever it held for that session. The bookings live
in a :class:`~worksteps.broker.planner.timeline.Timeline` (cheap to change), and planning works
on :meth:`Ledger.window`, a calendar of the request's window, at a cost that hardly grows with
the size of the site.

Invariant: after ``load`` and any sequence of ``apply`` and ``settle`` at instant ``now``, every
window is that of a calendar built from the rows that count at ``now``: state ``BOOKED``, or
``HELD`` with ``held_until > now``, and ``end > now``. Bookings that ended are dropped (no
request looks before ``now``), and so are holds as they lapse, so the timeline does not grow
with time. Pure and single-threaded, like the rest of the planner: the caller serialises access.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from worksteps.broker.planner.calendar import Calendar
from worksteps.broker.planner.model import Booking, Resources
from worksteps.broker.planner.timeline import Timeline

__all__ = ["Ledger", "StoredBooking"]


@dataclass(frozen=True, slots=True)
class StoredBooking:
    """One stored booking as it is now: ``counts`` is false once released, ``held_until`` is
    when a hold lapses (``None`` once confirmed)."""

    session: str
    counts: bool
    held_until: datetime | None
    start: datetime
    end: datetime
    resources: Resources

    def counts_at(self, now: datetime) -> bool:
        held = self.held_until is None or self.held_until > now
        return self.counts and held and self.end > now


class Ledger:
    """The bookings of one site that count, by session, and their timeline."""

    __slots__ = ("_capacity", "_lapse", "_live", "_timeline", "_until", "watermark")

    def __init__(self, capacity: Resources) -> None:
        self._capacity = capacity
        self._timeline = Timeline(capacity)
        self._live: dict[str, Booking] = {}
        self._until: dict[str, datetime] = {}  # when each live booking stops counting
        self._lapse: list[tuple[datetime, str]] = []  # heap of (until, session); stale kept
        self.watermark: int | None = None
        """Where the rows seen so far end, in the store's own terms; ``None``: nothing seen,
        load everything."""

    def window(self, start: datetime, end: datetime) -> Calendar:
        """A calendar of the bookings that count, right on ``[start, end)``, to plan on."""
        return self._timeline.window(start, end)

    def __len__(self) -> int:
        return len(self._live)

    def reset(self) -> None:
        """Forget everything: the next rows must be a full load."""
        self._timeline = Timeline(self._capacity)
        self._live.clear()
        self._until.clear()
        self._lapse.clear()
        self.watermark = None

    def load(self, rows: Iterable[StoredBooking], now: datetime) -> None:
        """Start over from every stored booking (those that do not count are skipped)."""
        self.reset()
        for row in rows:
            if row.counts_at(now):
                self._keep(row, Booking(row.start, row.end, row.resources), push=False)
        self._lapse = [(until, session) for session, until in self._until.items()]
        heapq.heapify(self._lapse)
        amounts = [b.resources for b in self._live.values()]
        self._timeline = Timeline.from_columns(
            self._capacity,
            [b.start for b in self._live.values()],
            [b.end for b in self._live.values()],
            [
                [a.cores for a in amounts],
                [a.memory for a in amounts],
                [a.gpus for a in amounts],
                [a.storage for a in amounts],
            ],
        )

    def apply(self, rows: Iterable[StoredBooking], now: datetime) -> None:
        """Take in rows that changed: each replaces what the ledger held for its session."""
        for row in rows:
            old = self._live.pop(row.session, None)
            if old is not None:
                del self._until[row.session]
                self._timeline.remove(old)
            if row.counts_at(now):
                booking = Booking(row.start, row.end, row.resources)
                self._timeline.add(booking)
                self._keep(row, booking)

    def settle(self, now: datetime) -> None:
        """Drop the holds that lapsed and the bookings that ended by ``now``."""
        lapse = self._lapse
        while lapse and lapse[0][0] <= now:
            until, session = heapq.heappop(lapse)
            if self._until.get(session) == until:  # else: replaced or dropped since
                del self._until[session]
                self._timeline.remove(self._live.pop(session))

    def _keep(self, row: StoredBooking, booking: Booking, push: bool = True) -> None:
        until = row.end if row.held_until is None else min(row.end, row.held_until)
        self._live[row.session] = booking
        self._until[row.session] = until
        if push:
            heapq.heappush(self._lapse, (until, row.session))
