"""The capacity calendar against hand-worked cases and a brute-force reference."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worksteps.broker.planner import Booking, Calendar, Demand, Resources, Slot, plan_offers

BASE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CAPACITY = Resources(cores=64, memory=256, gpus=4, storage=1000)


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def booking(start: float, end: float, cores: int, memory: int = 0, gpus: int = 0) -> Booking:
    """A booking between two offsets in minutes from BASE."""
    return Booking(at(start), at(end), Resources(cores, memory, gpus))


# -- brute-force reference: sums bookings instant by instant --------------------------------------


def brute_usage(bookings: Sequence[Booking], t: datetime) -> Resources:
    total = Resources.zero()
    for b in bookings:
        if b.start <= t < b.end:
            total = total + b.resources
    return total


def brute_peak(bookings: Sequence[Booking], start: datetime, end: datetime) -> Resources:
    instants = {start} | {b.start for b in bookings if start < b.start < end}
    peak = Resources.zero()
    for t in instants:
        peak = peak.max(brute_usage(bookings, t))
    return peak


# -- the model ------------------------------------------------------------------------------------


def test_resources_arithmetic_and_names() -> None:
    a = Resources(4, 16, 1, 10)
    b = Resources(2, 32, 0, 5)
    assert a + b == Resources(6, 48, 1, 15)
    assert a - b == Resources(2, -16, 1, 5)
    assert (a - b).floored_at_zero() == Resources(2, 0, 1, 5)
    assert a.min(b) == Resources(2, 16, 0, 5)
    assert a.max(b) == Resources(4, 32, 1, 10)
    assert b.min(a).fits_within(a)
    assert not a.fits_within(b)
    assert Resources.names() == ("cores", "memory", "gpus", "storage")
    assert dict(a.items()) == {"cores": 4, "memory": 16, "gpus": 1, "storage": 10}
    assert a["memory"] == 16
    with pytest.raises(KeyError):
        a["ram"]
    assert Resources(2, 4) == Resources(2, 4, 0, 0)


@pytest.mark.parametrize(("start", "end"), [(10, 10), (20, 10)])
def test_zero_length_and_reversed_bookings_are_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="must end after it starts"):
        booking(start, end, 1)
    with pytest.raises(ValueError, match="must end after it starts"):
        Slot(at(start), at(end), Resources(1, 1))


def test_negative_amounts_are_refused_per_field() -> None:
    with pytest.raises(ValueError, match=r"booking\.gpus must be >= 0, got -1"):
        Booking(at(0), at(1), Resources(1, 1, -1))
    with pytest.raises(ValueError, match=r"capacity\.memory must be >= 0"):
        Calendar(Resources(1, -1), [])
    with pytest.raises(ValueError, match=r"minimum\.cores must be >= 0, got -2"):
        Demand(Resources(-2, 1), Resources(4, 4))


def test_demand_maximum_below_minimum_names_the_field() -> None:
    with pytest.raises(ValueError, match="memory: maximum 8 is below minimum 16"):
        Demand(Resources(4, 16), Resources(8, 8))
    assert Demand.exactly(Resources(4, 16)).maximum == Resources(4, 16)


# -- usage, peak, free ----------------------------------------------------------------------------


def test_usage_is_a_step_function_of_half_open_bookings() -> None:
    cal = Calendar(CAPACITY, [booking(0, 60, 8, 32), booking(30, 90, 4, 8, 1)])
    assert cal.usage_at(at(-1)) == Resources.zero()
    assert cal.usage_at(at(0)) == Resources(8, 32)
    assert cal.usage_at(at(30)) == Resources(12, 40, 1)
    assert cal.usage_at(at(59.9)) == Resources(12, 40, 1)
    assert cal.usage_at(at(60)) == Resources(4, 8, 1)  # the first booking has ended at 60
    assert cal.usage_at(at(90)) == Resources.zero()
    assert cal.boundary_count == 4


def test_peak_and_free_take_each_resource_on_its_own() -> None:
    cal = Calendar(CAPACITY, [booking(0, 60, 40, 10), booking(60, 120, 10, 200)])
    assert cal.peak_usage(at(0), at(120)) == Resources(40, 200)
    assert cal.free_during(at(0), at(120)) == Resources(24, 56, 4, 1000)
    assert cal.peak_usage(at(60), at(120)) == Resources(10, 200)
    assert cal.peak_usage(at(-60), at(0)) == Resources.zero()  # ends where the first starts
    assert cal.peak_usage(at(120), at(240)) == Resources.zero()
    assert cal.peak_usage(at(-10), at(1)) == Resources(40, 10)
    with pytest.raises(ValueError, match="start < end"):
        cal.peak_usage(at(5), at(5))


def test_free_is_floored_at_zero_when_capacity_is_overcommitted() -> None:
    cal = Calendar(Resources(8, 8), [booking(0, 60, 10, 2)])
    assert cal.free_during(at(0), at(30)) == Resources(0, 6)


def test_back_to_back_bookings_of_equal_size_leave_no_boundary() -> None:
    cal = Calendar(CAPACITY, [booking(0, 60, 8), booking(60, 120, 8)])
    assert cal.boundary_count == 2
    assert list(cal.candidate_starts(at(0), at(200))) == [at(0), at(120)]
    assert Calendar(CAPACITY, [booking(0, 10, 0)]).boundary_count == 0
    assert Calendar(CAPACITY, []).usage_at(at(0)) == Resources.zero()
    with pytest.raises(TypeError, match="expected a Booking"):
        Calendar(CAPACITY, [(at(0), at(1))])  # type: ignore[list-item]


# -- candidate starts and the earliest start ------------------------------------------------------


def test_candidate_starts_are_the_window_start_and_booking_ends_inside() -> None:
    cal = Calendar(CAPACITY, [booking(-30, 10, 4), booking(0, 50, 4), booking(40, 300, 4)])
    starts = list(cal.candidate_starts(at(0), at(50)))
    assert starts == [at(0), at(10), at(50)]  # 50 is inside: the window end is inclusive
    assert list(cal.candidate_starts(at(10), at(10))) == [at(10)]  # an exact start
    assert list(cal.candidate_starts(at(11), at(49))) == [at(11)]
    with pytest.raises(ValueError, match="ends before it begins"):
        cal.candidate_starts(at(5), at(4))


def test_earliest_start_jumps_over_blocking_bookings() -> None:
    cal = Calendar(Resources(16, 64), [booking(0, 60, 12), booking(90, 150, 10)])
    need = Resources(8, 8)
    # [60, 90) is free but too short for an hour; the next fit is at 150
    assert cal.earliest_start(need, at(0), at(600), hours(1)) == at(150)
    assert cal.earliest_start(need, at(0), at(600), timedelta(minutes=30)) == at(60)
    assert cal.earliest_start(need, at(0), at(149), hours(1)) is None
    assert cal.earliest_start(Resources(4, 8), at(0), at(0), hours(3)) == at(0)  # exactly fits
    assert cal.earliest_start(Resources(5, 8), at(0), at(0), hours(3)) is None
    assert cal.earliest_start(Resources(17, 0), at(0), at(10_000), hours(1)) is None
    with pytest.raises(ValueError, match="duration must be positive"):
        cal.earliest_start(need, at(0), at(10), timedelta(0))


def test_sweep_reports_free_resources_for_each_candidate_start() -> None:
    cal = Calendar(Resources(16, 64), [booking(0, 60, 12, 8), booking(30, 150, 2, 40)])
    swept = list(cal.sweep_free(at(0), at(200), hours(1)))
    assert swept == [
        (at(0), Resources(2, 16)),
        (at(60), Resources(14, 24)),
        (at(150), Resources(16, 64)),
    ]
    iterator = cal.sweep_free(at(0), at(200), hours(1))
    next(iterator)
    cal.add(booking(500, 600, 1))
    with pytest.raises(RuntimeError, match="changed during a sweep"):
        next(iterator)


def test_add_splits_segments_and_copy_is_independent() -> None:
    cal = Calendar(CAPACITY, [booking(0, 60, 8)])
    clone = cal.copy()
    cal.add(booking(30, 90, 4, 4))
    assert cal.usage_at(at(45)) == Resources(12, 4)
    assert cal.usage_at(at(75)) == Resources(4, 4)
    assert cal.usage_at(at(-5)) == Resources.zero()
    assert clone.usage_at(at(45)) == Resources(8, 0)
    with pytest.raises(TypeError):
        cal.add((at(0), at(1)))  # type: ignore[arg-type]


# -- against the brute-force reference ------------------------------------------------------------

amounts = st.builds(
    Resources, st.integers(0, 6), st.integers(0, 6), st.integers(0, 2), st.integers(0, 3)
)
bookings_st = st.lists(
    st.builds(
        lambda start, length, res: Booking(at(start), at(start + length), res),
        st.integers(0, 100),
        st.integers(1, 50),
        amounts,
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    bookings=bookings_st,
    added=bookings_st,
    start=st.integers(-10, 160),
    length=st.integers(1, 80),
)
def test_queries_match_brute_force(
    bookings: list[Booking], added: list[Booking], start: int, length: int
) -> None:
    cal = Calendar(CAPACITY, bookings)
    for extra in added:  # built in two ways: the constructor and add()
        cal.add(extra)
    everything = bookings + added
    for minute in range(-5, 165):
        assert cal.usage_at(at(minute)) == brute_usage(everything, at(minute))
    peak = brute_peak(everything, at(start), at(start + length))
    assert cal.peak_usage(at(start), at(start + length)) == peak
    part = cal.excerpt(at(start), at(start + length))
    for minute in range(start, start + length):
        assert part.usage_at(at(minute)) == cal.usage_at(at(minute))
    assert part.usage_at(at(start + length)) == Resources.zero()
    part.add(Booking(at(start), at(start + length), Resources(1, 1)))
    assert cal.peak_usage(at(start), at(start + length)) == peak  # the excerpt is independent
    assert cal.free_during(at(start), at(start + length)) == (CAPACITY - peak).floored_at_zero()


@settings(max_examples=150, deadline=None)
@given(
    bookings=bookings_st,
    capacity=amounts,
    need=amounts,
    window=st.tuples(st.integers(0, 120), st.integers(0, 60)),
    length=st.integers(1, 60),
)
def test_search_matches_brute_force(
    bookings: list[Booking],
    capacity: Resources,
    need: Resources,
    window: tuple[int, int],
    length: int,
) -> None:
    cal = Calendar(capacity, bookings)
    first, last = window[0], window[0] + window[1]
    duration = timedelta(minutes=length)

    # every booking boundary is on a whole minute, so testing each minute is exhaustive
    def fits(minute: int) -> bool:
        peak = brute_peak(bookings, at(minute), at(minute + length))
        return need.fits_within((capacity - peak).floored_at_zero())

    expected = next((at(m) for m in range(first, last + 1) if fits(m)), None)
    assert cal.earliest_start(need, at(first), at(last), duration) == expected

    starts = list(cal.candidate_starts(at(first), at(last)))
    assert starts == sorted(set(starts))
    ends = {b.end for b in bookings if at(first) < b.end <= at(last)}
    assert set(starts) <= ends | {at(first)}
    if expected is not None:
        assert expected in starts  # the earliest fit is always a candidate

    swept = list(cal.sweep_free(at(first), at(last), duration))
    assert [s for s, _ in swept] == starts
    for s, free in swept:
        assert free == (capacity - brute_peak(bookings, s, s + duration)).floored_at_zero()


# -- scale ----------------------------------------------------------------------------------------


def test_a_calendar_of_100k_bookings_answers_queries() -> None:
    rng = random.Random(2026)
    capacity = Resources(4096, 16384, 64, 100_000)
    bookings = []
    for _ in range(100_000):
        start = rng.randrange(0, 60 * 24 * 30)  # a month, in minutes
        bookings.append(
            booking(
                start, start + rng.randrange(30, 600), rng.randrange(1, 9), rng.randrange(1, 33)
            )
        )
    cal = Calendar(capacity, bookings)
    assert cal.boundary_count > 10_000
    t = at(60 * 24 * 15)
    sample = [b for b in bookings if b.start <= t < b.end]
    assert cal.usage_at(t) == brute_usage(sample, t)
    demand = Demand(Resources(16, 64), Resources(64, 256))
    slots = plan_offers(cal, demand, at(0), at(60 * 24 * 30), hours(2))
    assert 1 <= len(slots) <= 4
    for slot in slots:
        assert demand.minimum.fits_within(slot.resources)
        assert slot.resources.fits_within(cal.free_during(slot.start, slot.end))


@given(
    bookings=st.lists(
        st.tuples(st.integers(0, 500), st.integers(1, 200), st.integers(0, 8), st.integers(0, 8)),
        max_size=40,
    )
)
def test_a_calendar_from_columns_equals_one_from_bookings(
    bookings: list[tuple[int, int, int, int]],
) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    made = [
        Booking(base + timedelta(minutes=s), base + timedelta(minutes=s + d), Resources(c, m, 0, 0))
        for s, d, c, m in bookings
    ]
    capacity = Resources(16, 32, 0, 0)
    columns = Calendar.from_columns(
        capacity,
        [b.start for b in made],
        [b.end for b in made],
        [
            [b.resources.cores for b in made],
            [b.resources.memory for b in made],
            [0] * len(made),
            [0] * len(made),
        ],
    )
    reference = Calendar(capacity, made)
    end = base + timedelta(minutes=800)
    assert columns.boundary_count == reference.boundary_count
    for minute in range(0, 800, 7):
        t = base + timedelta(minutes=minute)
        assert columns.usage_at(t) == reference.usage_at(t)
        assert columns.free_during(t, end) == reference.free_during(t, end)
