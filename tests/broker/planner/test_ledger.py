"""The ledger, told of changes in any order and as time passes, against the rows themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from worksteps.broker.planner import Calendar, Resources
from worksteps.broker.planner.ledger import Ledger, StoredBooking

BASE = datetime(2030, 1, 1, tzinfo=UTC)
CAPACITY = Resources(20, 40, 0, 100)


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def reference(rows: dict[str, StoredBooking], now: datetime) -> Calendar:
    """A calendar built from scratch from the rows that count at ``now``."""
    from worksteps.broker.planner import Booking

    live = [r for r in rows.values() if r.counts_at(now)]
    return Calendar(CAPACITY, [Booking(r.start, r.end, r.resources) for r in live])


def assert_agrees(ledger: Ledger, rows: dict[str, StoredBooking], now: datetime) -> None:
    start, end = now, now + timedelta(days=3)
    window = ledger.window(start, end)
    expected = reference(rows, now).excerpt(start, end)
    assert window.boundary_count == expected.boundary_count
    for minute in range(0, 3 * 24 * 60, 37):
        t = start + timedelta(minutes=minute)
        assert window.usage_at(t) == expected.usage_at(t), t
    assert len(ledger) == sum(r.counts_at(now) for r in rows.values())


row_strategy = st.builds(
    lambda session, state, held, start, length, cores, memory: StoredBooking(
        f"s{session}",
        state != "RELEASED",
        at(held) if state == "HELD" else None,
        at(start),
        at(start + length),
        Resources(cores, memory, 0, 1),
    ),
    st.integers(0, 25),
    st.sampled_from(["HELD", "BOOKED", "RELEASED"]),
    st.integers(0, 600),
    st.integers(-300, 3000),
    st.integers(1, 900),
    st.integers(0, 4),
    st.integers(0, 8),
)


@settings(max_examples=150)
@given(
    loaded=st.lists(row_strategy, max_size=20),
    batches=st.lists(
        st.tuples(st.lists(row_strategy, max_size=6), st.integers(0, 90)), max_size=12
    ),
)
def test_changes_and_passing_time_keep_the_ledger_equal_to_its_rows(
    loaded: list[StoredBooking], batches: list[tuple[list[StoredBooking], int]]
) -> None:
    now = at(0)
    rows = {r.session: r for r in loaded}
    ledger = Ledger(CAPACITY)
    ledger.load(rows.values(), now)
    assert_agrees(ledger, rows, now)
    for changed, minutes in batches:
        now += timedelta(minutes=minutes)
        rows.update((r.session, r) for r in changed)
        ledger.apply(changed, now)
        ledger.settle(now)
        assert_agrees(ledger, rows, now)


def test_a_hold_lapses_unless_it_was_confirmed_first() -> None:
    ledger = Ledger(CAPACITY)
    held = StoredBooking("a", True, at(5), at(10), at(70), Resources(4, 4, 0, 0))
    other = StoredBooking("b", True, at(5), at(10), at(70), Resources(2, 2, 0, 0))
    ledger.load([held, other], at(0))
    assert ledger.window(at(10), at(70)).usage_at(at(20)).cores == 6
    ledger.apply([StoredBooking("a", True, None, at(10), at(70), Resources(4, 4, 0, 0))], at(1))
    ledger.settle(at(5))
    assert ledger.window(at(10), at(70)).usage_at(at(20)).cores == 4  # b lapsed, a is booked
    ledger.settle(at(70))
    assert len(ledger) == 0  # a ended: nothing left to plan around


def test_reset_forgets_everything_until_the_next_load() -> None:
    ledger = Ledger(CAPACITY)
    ledger.load([StoredBooking("a", True, None, at(0), at(60), Resources(1, 1, 0, 0))], at(0))
    ledger.watermark = 41
    ledger.reset()
    assert ledger.watermark is None
    assert len(ledger) == 0
    assert ledger.window(at(0), at(60)).boundary_count == 0
