"""Shortfall explanations: the English by hand, the numbers against brute force."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from worksteps.broker.planner import (
    Booking,
    Calendar,
    Demand,
    Resources,
    explain_shortfall,
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


def brute_free(
    capacity: Resources, bookings: Sequence[Booking], start: datetime, end: datetime
) -> Resources:
    """Capacity minus the peak of the summed bookings over [start, end), floored at 0."""
    peak = Resources.zero()
    for t in {start} | {b.start for b in bookings if start < b.start < end}:
        used = Resources.zero()
        for b in bookings:
            if b.start <= t < b.end:
                used = used + b.resources
        peak = peak.max(used)
    return (capacity - peak).floored_at_zero()


# -- the messages ---------------------------------------------------------------------------------


def test_shortfall_names_the_short_resource_and_the_earliest_fit() -> None:
    cal = Calendar(Resources(64, 256), [Booking(h(0), h(2), cores(56))])
    demand = Demand(Resources(24, 16), Resources(32, 64))
    assert plan_offers(cal, demand, h(0), h(1), TWO_HOURS) == []
    shortfall = explain_shortfall(cal, demand, h(0), h(1), TWO_HOURS, h(48))
    assert [(r.name, r.requested_min, r.best_free, r.capacity) for r in shortfall.resources] == [
        ("cores", 24, 8, 64)
    ]
    assert shortfall.earliest_fit == h(2)
    assert shortfall.messages() == [
        "cores: at least 24 needed, at most 8 free for PT2H in the requested window "
        "(site capacity 64)",
        "the request would fit from 2026-11-28T14:00:00Z",
    ]


def test_shortfall_when_the_request_can_never_fit() -> None:
    cal = Calendar(Resources(64, 256), [])
    demand = Demand.exactly(Resources(96, 300))
    shortfall = explain_shortfall(cal, demand, h(0), h(1), TWO_HOURS, h(48))
    assert shortfall.earliest_fit is None
    assert shortfall.never_fits
    assert shortfall.messages() == [
        "cores: at least 96 needed, but the site has only 64",
        "memory: at least 300 GiB needed, but the site has only 256 GiB",
        "the request can never fit: it needs more cores than the site has (64) "
        "and more memory than the site has (256 GiB)",
    ]


def test_shortfall_when_resources_are_never_free_together() -> None:
    # memory is free from 3h, when cores stop being free
    bookings = [Booking(h(0), h(3), Resources(0, 200)), Booking(h(3), h(30), Resources(60, 0))]
    cal = Calendar(Resources(64, 256), bookings)
    demand = Demand.exactly(Resources(8, 100))
    shortfall = explain_shortfall(cal, demand, h(0), h(3), TWO_HOURS, h(12))
    # at 0 memory is short by 44 of 256, at 3h cores by 4 of 64: 3h is the better start
    assert [(r.name, r.best_free) for r in shortfall.resources] == [("cores", 64)]
    assert shortfall.earliest_fit is None
    assert shortfall.messages() == [
        "cores: at least 8 needed; up to 64 free for PT2H in the requested window, but never "
        "at a start where the other resources are free too (site capacity 64)",
        "the request does not fit at any start before 2026-11-29T00:00:00Z",
    ]


def test_shortfall_lists_every_short_resource_with_units() -> None:
    cal = Calendar(Resources(64, 256, 2), [Booking(h(0), h(5), Resources(60, 250, 2))])
    demand = Demand(Resources(8, 16, 1), Resources(8, 64, 1))
    shortfall = explain_shortfall(cal, demand, h(0), h(1), timedelta(minutes=90), h(12))
    assert [r.name for r in shortfall.resources] == ["cores", "memory", "gpus"]
    assert shortfall.messages() == [
        "cores: at least 8 needed, at most 4 free for PT1H30M in the requested window "
        "(site capacity 64)",
        "memory: at least 16 GiB needed, at most 6 GiB free for PT1H30M in the requested "
        "window (site capacity 256 GiB)",
        "gpus: at least 1 needed, at most 0 free for PT1H30M in the requested window "
        "(site capacity 2)",
        "the request would fit from 2026-11-28T17:00:00Z",
    ]


# -- against brute force ---------------------------------------------------------------------------


def vectors(most: int, rare_most: int) -> st.SearchStrategy[Resources]:
    rare = st.one_of(st.just(0), st.integers(0, rare_most))
    return st.builds(Resources, st.integers(0, most), st.integers(0, most), rare, rare)


capacities = vectors(8, 3)
bookings_st = st.lists(
    st.builds(
        lambda start, length, res: Booking(at(start), at(start + length), res),
        st.integers(0, 120),
        st.integers(1, 60),
        vectors(5, 2),
    ),
    max_size=10,
)


@st.composite
def demands(draw: st.DrawFn) -> Demand:
    low = draw(vectors(3, 1))
    return Demand(low, low + draw(vectors(6, 2)))


@settings(max_examples=100, deadline=None)
@given(
    capacity=capacities,
    bookings=bookings_st,
    demand=demands(),
    window=st.tuples(st.integers(0, 150), st.integers(0, 60)),
    length=st.integers(1, 60),
    horizon=st.integers(0, 200),
)
def test_shortfall_agrees_with_brute_force(
    capacity: Resources,
    bookings: list[Booking],
    demand: Demand,
    window: tuple[int, int],
    length: int,
    horizon: int,
) -> None:
    first, last = window[0], window[0] + window[1]
    calendar = Calendar(capacity, bookings)
    duration = timedelta(minutes=length)
    if plan_offers(calendar, demand, at(first), at(last), duration):
        return
    shortfall = explain_shortfall(calendar, demand, at(first), at(last), duration, at(horizon))
    frees = [brute_free(capacity, bookings, at(m), at(m + length)) for m in range(first, last + 1)]
    best = Resources.zero()
    for free in frees:
        best = best.max(free)
    assert shortfall.resources, "a request without offers is short of something"
    for item in shortfall.resources:
        assert item.best_free == best[item.name]
        assert item.capacity == capacity[item.name]
        assert item.requested_min == demand.minimum[item.name]
    fits_later = [
        at(m)
        for m in range(last, horizon)
        if demand.minimum.fits_within(brute_free(capacity, bookings, at(m), at(m + length)))
    ]
    assert shortfall.earliest_fit == (fits_later[0] if fits_later else None)
    messages = shortfall.messages()
    assert len(messages) == len(shortfall.resources) + 1
    for message, item in zip(messages, shortfall.resources, strict=False):
        assert message.startswith(f"{item.name}: at least {item.requested_min}")
