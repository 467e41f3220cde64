"""The timeline (a calendar kept for change) against calendars built from the same bookings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worksteps.broker.planner import Booking, Calendar, Resources
from worksteps.broker.planner.timeline import Timeline

BASE = datetime(2030, 1, 1, tzinfo=UTC)
CAPACITY = Resources(20, 40, 2, 100)


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def columns(bookings: list[Booking]) -> tuple[list[datetime], list[datetime], list[list[int]]]:
    amounts = [b.resources.as_tuple() for b in bookings]
    return (
        [b.start for b in bookings],
        [b.end for b in bookings],
        [[a[r] for a in amounts] for r in range(4)],
    )


def assert_same_window(timeline: Timeline, bookings: list[Booking], start: int, end: int) -> None:
    """The timeline's window equals the excerpt of a calendar built from ``bookings``."""
    window = timeline.window(at(start), at(end))
    reference = Calendar(CAPACITY, bookings).excerpt(at(start), at(end))
    assert window.boundary_count == reference.boundary_count
    instants = {at(start)} | {b.start for b in bookings} | {b.end for b in bookings}
    for t in sorted(i for i in instants if at(start) <= i < at(end)):
        assert window.usage_at(t) == reference.usage_at(t), t
    assert window.free_during(at(start), at(end)) == reference.free_during(at(start), at(end))


booking_strategy = st.builds(
    lambda start, length, c, m, g, s: Booking(at(start), at(start + length), Resources(c, m, g, s)),
    st.integers(0, 2000),
    st.integers(1, 600),
    st.integers(0, 4),
    st.integers(0, 8),
    st.integers(0, 1),
    st.integers(0, 5),
)


@settings(max_examples=150)
@given(
    initial=st.lists(booking_strategy, max_size=30),
    steps=st.lists(st.tuples(st.booleans(), booking_strategy, st.integers(0, 10**6)), max_size=60),
    windows=st.lists(st.tuples(st.integers(-100, 2600), st.integers(1, 900)), max_size=8),
)
def test_adds_and_removes_keep_every_window_right(
    initial: list[Booking],
    steps: list[tuple[bool, Booking, int]],
    windows: list[tuple[int, int]],
) -> None:
    timeline = Timeline.from_columns(CAPACITY, *columns(initial))
    live = list(initial)
    for add, booking, pick in steps:
        if add or not live:
            timeline.add(booking)
            live.append(booking)
        else:
            timeline.remove(live.pop(pick % len(live)))
    for start, length in [*windows, (-100, 3000)]:
        assert_same_window(timeline, live, start, start + length)


def test_blocks_split_and_empty_out_as_bookings_come_and_go() -> None:
    rng = random.Random(7)
    made = [
        Booking(at(s), at(s + rng.randint(1, 300)), Resources(1, 2, 0, 1))
        for s in (rng.randint(0, 20_000) for _ in range(3000))
    ]
    timeline = Timeline(CAPACITY)
    for booking in made:  # one by one: blocks split many times
        timeline.add(booking)
    assert timeline.boundary_count == Calendar(CAPACITY, made).boundary_count
    assert_same_window(timeline, made, 5_000, 9_000)
    for booking in made[:2500]:
        timeline.remove(booking)
    assert_same_window(timeline, made[2500:], -10, 21_000)
    for booking in made[2500:]:
        timeline.remove(booking)
    assert timeline.boundary_count == 0
    assert timeline.window(at(0), at(10)).boundary_count == 0


def test_a_window_before_or_after_every_booking_is_empty_or_exact() -> None:
    booking = Booking(at(100), at(200), Resources(3, 0, 0, 0))
    timeline = Timeline.from_columns(CAPACITY, *columns([booking]))
    assert timeline.window(at(0), at(50)).boundary_count == 0
    after = timeline.window(at(300), at(400))
    assert after.free_during(at(300), at(400)) == CAPACITY
    inside = timeline.window(at(150), at(160))
    assert inside.usage_at(at(150)) == Resources(3, 0, 0, 0)
    assert inside.free_during(at(150), at(160)).cores == 17


def test_removing_what_was_never_added_is_caught_by_the_window() -> None:
    timeline = Timeline(CAPACITY)
    timeline.add(Booking(at(0), at(60), Resources(1, 0, 0, 0)))
    timeline.remove(Booking(at(10), at(20), Resources(2, 0, 0, 0)))
    with pytest.raises(ValueError, match="below zero"):
        timeline.window(at(0), at(60))


def test_a_window_needs_a_positive_length() -> None:
    with pytest.raises(ValueError, match="start < end"):
        Timeline(CAPACITY).window(at(5), at(5))
