"""Offer generation: each policy by hand, then every promise checked on random sites."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from worksteps.broker.planner import (
    Booking,
    Calendar,
    Demand,
    Resources,
    Slot,
    plan_offers,
)

BASE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def h(n: float) -> datetime:
    return BASE + timedelta(hours=n)


def cores(n: int, memory: int = 0) -> Resources:
    return Resources(n, memory)


def starts_and_cores(slots: Sequence[Slot]) -> list[tuple[datetime, int]]:
    return [(slot.start, slot.resources.cores) for slot in slots]


# -- brute-force reference ------------------------------------------------------------------------


def brute_usage(bookings: Sequence[Booking], t: datetime) -> Resources:
    total = Resources.zero()
    for b in bookings:
        if b.start <= t < b.end:
            total = total + b.resources
    return total


def brute_free(
    capacity: Resources, bookings: Sequence[Booking], start: datetime, end: datetime
) -> Resources:
    peak = Resources.zero()
    for t in {start} | {b.start for b in bookings if start < b.start < end}:
        peak = peak.max(brute_usage(bookings, t))
    return (capacity - peak).floored_at_zero()


# -- each policy by hand --------------------------------------------------------------------------


def test_an_idle_site_offers_the_maximum_at_non_overlapping_times() -> None:
    cal = Calendar(Resources(64, 256), [])
    demand = Demand(cores(4, 8), cores(8, 16))
    slots = plan_offers(cal, demand, h(0), h(6), TWO_HOURS)
    assert [s.start for s in slots] == [h(0), h(2), h(4), h(6)]
    assert all(s.resources == cores(8, 16) and s.end == s.start + TWO_HOURS for s in slots)
    assert [s.start for s in plan_offers(cal, demand, h(0), h(5), TWO_HOURS)] == [h(0), h(2), h(4)]


def test_earliest_grants_what_fits_then_largest_grants_the_maximum() -> None:
    cal = Calendar(Resources(16, 64), [Booking(h(0), h(2), cores(10))])
    demand = Demand(cores(4, 4), cores(16, 4))
    slots = plan_offers(cal, demand, h(0), h(4), TWO_HOURS)
    # EARLIEST: 6 cores at once; LARGEST: all 16 at 2h; the alternative after 0 would be 2h,
    # which LARGEST already covers, so the next one is 4h
    assert starts_and_cores(slots) == [(h(0), 6), (h(2), 16), (h(4), 16)]


def test_largest_takes_the_fullest_start_when_the_maximum_never_fits() -> None:
    bookings = [Booking(h(0), h(2), cores(10)), Booking(h(2), h(10), cores(4))]
    cal = Calendar(Resources(16, 64), bookings)
    demand = Demand(cores(4), cores(16))
    slots = plan_offers(cal, demand, h(0), h(3), TWO_HOURS, max_offers=2)
    assert starts_and_cores(slots) == [(h(0), 6), (h(2), 12)]


def test_largest_is_placed_around_the_earliest_offer() -> None:
    # the maximum would fit from 30 min, but offer 1 holds 6 cores until 2h
    cal = Calendar(Resources(16, 64), [Booking(h(0), h(0.5), cores(10))])
    demand = Demand(cores(4), cores(16))
    slots = plan_offers(cal, demand, h(0), h(4), TWO_HOURS, max_offers=2)
    assert starts_and_cores(slots) == [(h(0), 6), (h(2), 16)]


def test_largest_is_skipped_when_no_start_is_better() -> None:
    cal = Calendar(Resources(16, 64), [Booking(h(0), h(10), cores(10))])
    demand = Demand(cores(4), cores(16))
    slots = plan_offers(cal, demand, h(0), h(2), TWO_HOURS)
    assert starts_and_cores(slots) == [(h(0), 6), (h(2), 6)]  # EARLIEST, then an alternative


def test_largest_must_not_be_worse_in_any_resource() -> None:
    # free for an hour: at 0 4 cores / 32 GiB, at 1h 2 / 8, from 2h 8 / 16. 2h has more cores
    # than offer 1 but less memory, so it is not LARGEST; the second offer is the alternative
    bookings = [
        Booking(h(0), h(1), Resources(12, 32)),
        Booking(h(1), h(2), Resources(14, 56)),
        Booking(h(2), h(9), Resources(8, 48)),
    ]
    cal = Calendar(Resources(16, 64), bookings)
    demand = Demand(Resources(2, 8), Resources(16, 64))
    one_hour = timedelta(hours=1)
    assert [(s.start, s.resources) for s in plan_offers(cal, demand, h(0), h(3), one_hour, 2)] == [
        (h(0), Resources(4, 32)),
        (h(1), Resources(2, 8)),
    ]
    assert [s.start for s in plan_offers(cal, demand, h(0), h(3), one_hour)] == [
        h(0),
        h(1),
        h(2),
        h(3),
    ]


def test_alternatives_skip_busy_times_and_stay_in_the_window() -> None:
    cal = Calendar(Resources(8, 8), [Booking(h(2), h(3), cores(8))])
    demand = Demand(cores(2), cores(2))
    slots = plan_offers(cal, demand, h(0), h(6), TWO_HOURS)
    assert [s.start for s in slots] == [h(0), h(3), h(5)]


def test_an_exact_start_gets_one_offer_or_none() -> None:
    cal = Calendar(Resources(8, 8), [Booking(h(1), h(2), cores(6))])
    fits = plan_offers(cal, Demand(cores(2), cores(4)), h(0), h(0), TWO_HOURS)
    assert starts_and_cores(fits) == [(h(0), 2)]
    assert plan_offers(cal, Demand(cores(3), cores(4)), h(0), h(0), TWO_HOURS) == []


def test_the_capacity_edge_exactly_fits() -> None:
    cal = Calendar(Resources(16, 32, 1, 100), [Booking(h(0), h(4), Resources(10, 16, 0, 40))])
    exact = Resources(6, 16, 1, 60)
    assert plan_offers(cal, Demand.exactly(exact), h(0), h(1), TWO_HOURS) != []
    for name in Resources.names():
        over = Resources.from_tuple([v + (n == name) for n, v in exact.items()])
        assert plan_offers(cal, Demand.exactly(over), h(0), h(1), TWO_HOURS) == [], name


def test_max_offers_limits_and_the_callers_calendar_is_untouched() -> None:
    cal = Calendar(Resources(8, 8), [Booking(h(0), h(1), cores(4))])
    demand = Demand(cores(2), cores(8))
    assert plan_offers(cal, demand, h(0), h(8), TWO_HOURS, max_offers=0) == []
    assert len(plan_offers(cal, demand, h(0), h(8), TWO_HOURS, max_offers=1)) == 1
    assert len(plan_offers(cal, demand, h(0), h(8), TWO_HOURS)) == 4
    assert cal.usage_at(h(0)) == cores(4)
    assert cal.usage_at(h(1)) == Resources.zero()


def test_invalid_arguments_are_refused() -> None:
    cal = Calendar(Resources(8, 8), [])
    demand = Demand(cores(1), cores(1))
    with pytest.raises(ValueError, match="window ends before it begins"):
        plan_offers(cal, demand, h(1), h(0), TWO_HOURS)
    with pytest.raises(ValueError, match="duration must be positive"):
        plan_offers(cal, demand, h(0), h(1), timedelta(0))
    with pytest.raises(ValueError, match="max_offers"):
        plan_offers(cal, demand, h(0), h(1), TWO_HOURS, max_offers=-1)


# -- properties over random sites -----------------------------------------------------------------


def vectors(most: int, rare_most: int) -> st.SearchStrategy[Resources]:
    """Small resource vectors; GPUs and storage are often zero, as at a real site."""
    rare = st.one_of(st.just(0), st.integers(0, rare_most))
    return st.builds(Resources, st.integers(0, most), st.integers(0, most), rare, rare)


capacities = vectors(8, 3)
amounts = vectors(5, 2)
bookings_st = st.lists(
    st.builds(
        lambda start, length, res: Booking(at(start), at(start + length), res),
        st.integers(0, 120),
        st.integers(1, 60),
        amounts,
    ),
    max_size=10,
)


@st.composite
def demands(draw: st.DrawFn) -> Demand:
    low = draw(vectors(3, 1))
    extra = draw(vectors(6, 2))
    return Demand(low, low + extra)


def check_offers(
    capacity: Resources,
    bookings: Sequence[Booking],
    demand: Demand,
    first: int,
    last: int,
    length: int,
    max_offers: int,
) -> list[Slot]:
    """Plan, then check every promise of plan_offers against the brute-force reference."""
    calendar = Calendar(capacity, bookings)
    duration = timedelta(minutes=length)
    slots = plan_offers(calendar, demand, at(first), at(last), duration, max_offers)
    assert len(slots) <= max_offers
    assert [s.start for s in slots] == sorted({s.start for s in slots})
    # (a) inside the window, within [min, max]
    for slot in slots:
        assert at(first) <= slot.start <= at(last)
        assert slot.end == slot.start + duration
        assert demand.minimum.fits_within(slot.resources)
        assert slot.resources.fits_within(demand.maximum)
    # (b) all offers accepted together never overcommit an instant they add to
    after = [*bookings, *(s.as_booking() for s in slots)]
    for t in {b.start for b in after}:
        used = brute_usage(after, t).as_tuple()
        added = brute_usage([s.as_booking() for s in slots], t).as_tuple()
        for r in range(4):
            assert added[r] == 0 or used[r] <= capacity.as_tuple()[r]

    # (c), (d): every minute is a possible start; boundaries are on whole minutes
    def free_at(minute: int) -> Resources:
        return brute_free(capacity, bookings, at(minute), at(minute + length))

    fitting = [m for m in range(first, last + 1) if demand.minimum.fits_within(free_at(m))]
    if not slots:
        assert fitting == [] or max_offers == 0
    else:
        assert slots[0].start == at(fitting[0])
        assert slots[0].resources == free_at(fitting[0]).min(demand.maximum)
    return slots


@settings(max_examples=200, deadline=None)
@given(
    capacity=capacities,
    bookings=bookings_st,
    demand=demands(),
    window=st.tuples(st.integers(0, 150), st.integers(0, 120)),
    length=st.integers(1, 90),
    max_offers=st.integers(0, 5),
)
def test_offers_keep_every_promise(
    capacity: Resources,
    bookings: list[Booking],
    demand: Demand,
    window: tuple[int, int],
    length: int,
    max_offers: int,
) -> None:
    check_offers(capacity, bookings, demand, window[0], window[0] + window[1], length, max_offers)


class BusySite(RuleBasedStateMachine):
    """A site over time: bookings arrive, requests are planned and some offers accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.capacity = Resources(8, 8, 1, 3)
        self.bookings: list[Booking] = []
        self.calendar = Calendar(self.capacity, [])

    @rule(start=st.integers(0, 120), length=st.integers(1, 60), res=amounts)
    def book_directly(self, start: int, length: int, res: Resources) -> None:
        booking = Booking(at(start), at(start + length), res)
        self.bookings.append(booking)
        self.calendar.add(booking)

    @rule(
        demand=demands(),
        window=st.tuples(st.integers(0, 150), st.integers(0, 90)),
        length=st.integers(1, 60),
        pick=st.integers(0, 4),
    )
    def request_and_accept(
        self, demand: Demand, window: tuple[int, int], length: int, pick: int
    ) -> None:
        first, last = window[0], window[0] + window[1]
        slots = check_offers(self.capacity, self.bookings, demand, first, last, length, 4)
        duration = timedelta(minutes=length)
        incremental = plan_offers(self.calendar, demand, at(first), at(last), duration)
        assert incremental == slots  # a calendar grown by add() plans like a rebuilt one
        if slots:
            chosen = slots[pick % len(slots)].as_booking()
            self.bookings.append(chosen)
            self.calendar.add(chosen)

    @invariant()
    def calendar_matches_its_bookings(self) -> None:
        for t in {b.start for b in self.bookings} | {b.end for b in self.bookings}:
            assert self.calendar.usage_at(t) == brute_usage(self.bookings, t)


TestBusySite = BusySite.TestCase
TestBusySite.settings = settings(max_examples=40, stateful_step_count=15, deadline=None)
