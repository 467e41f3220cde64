"""Micro-profile of the broker planner: how long building and querying a calendar takes.

Run: ``.venv/bin/python bench/planner_profile.py [--sizes 1000,10000,100000]``.

Bookings are random over 30 days (30 min to 10 h, 1-8 cores, 1-32 GiB) on a site sized so the
calendar is busy but not full: ``plan_offers`` on a 1-day window usually finds four offers. The
"congested" row asks for nearly the whole site, which is never free, so the search walks every
boundary of the window; "explain_shortfall" then sweeps the window and searches one more day.
Prints a table of milliseconds (median of several runs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from worksteps.broker.planner import (
    Booking,
    Calendar,
    Demand,
    Resources,
    explain_shortfall,
    plan_offers,
)

BASE = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30


def random_bookings(count: int, seed: int = 2026) -> list[Booking]:
    rng = random.Random(seed)
    span = DAYS * 24 * 3600
    bookings = []
    for _ in range(count):
        start = BASE + timedelta(seconds=rng.randrange(span))
        end = start + timedelta(minutes=rng.randrange(30, 600))
        bookings.append(Booking(start, end, Resources(rng.randint(1, 8), rng.randint(1, 32))))
    return bookings


def timed(action: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``action`` in milliseconds."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def profile(count: int) -> list[tuple[str, float, str]]:
    bookings = random_bookings(count)
    # mean concurrent usage is count * 5.25 h * 4.5 cores / 720 h; leave ~30 % headroom
    mean_cores = count * 5.25 * 4.5 / (DAYS * 24)
    capacity = Resources(int(mean_cores * 1.3) + 16, int(mean_cores * 1.3 * 3.7) + 64, 0, 0)
    rows: list[tuple[str, float, str]] = []
    repeat = 3 if count >= 100_000 else 7
    rows.append(("build calendar", timed(lambda: Calendar(capacity, bookings), repeat), ""))
    calendar = Calendar(capacity, bookings)
    rows[-1] = (rows[-1][0], rows[-1][1], f"{calendar.boundary_count} boundaries")
    rng = random.Random(7)
    instants = [BASE + timedelta(minutes=rng.randrange(DAYS * 24 * 60)) for _ in range(1000)]
    rows.append(
        (
            "usage_at x1000",
            timed(lambda: [calendar.usage_at(t) for t in instants], repeat),
            "",
        )
    )
    two_hours = timedelta(hours=2)
    rows.append(
        (
            "free_during(2h) x1000",
            timed(lambda: [calendar.free_during(t, t + two_hours) for t in instants], repeat),
            "",
        )
    )
    middle = BASE + timedelta(days=DAYS // 2)
    demand = Demand(Resources(8, 32), Resources(64, 256))
    for days in (1, 7, DAYS):
        window_end = middle + timedelta(days=days) if days < DAYS else BASE + timedelta(days=DAYS)
        start = middle if days < DAYS else BASE
        slots = plan_offers(calendar, demand, start, window_end, two_hours)
        rows.append(
            (
                f"plan_offers, {days}-day window",
                timed(partial(plan_offers, calendar, demand, start, window_end, two_hours), repeat),
                f"{len(slots)} offers",
            )
        )
    full = calendar.capacity
    congested = Demand.exactly(Resources(full.cores - 4, full.memory // 4))
    window = (BASE, BASE + timedelta(days=DAYS))
    slots = plan_offers(calendar, congested, *window, two_hours)
    rows.append(
        (
            "plan_offers, congested 30 days",
            timed(lambda: plan_offers(calendar, congested, *window, two_hours), repeat),
            f"{len(slots)} offers",
        )
    )
    rows.append(
        (
            "sweep_free, whole 30 days",
            timed(lambda: sum(1 for _ in calendar.sweep_free(*window, two_hours)), repeat),
            f"{sum(1 for _ in calendar.sweep_free(*window, two_hours))} candidate starts",
        )
    )
    huge = Demand.exactly(Resources(full.cores - 1, full.memory - 1))
    rows.append(
        (
            "explain_shortfall, 30 days",
            timed(
                lambda: explain_shortfall(
                    calendar, huge, *window, two_hours, BASE + timedelta(days=DAYS + 1)
                ),
                repeat,
            ),
            "",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="booking counts")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print(f"{'bookings':>9}  {'operation':<32} {'ms':>10}  note")
    for count in sizes:
        for operation, ms, note in profile(count):
            print(f"{count:>9}  {operation:<32} {ms:>10.2f}  {note}")


if __name__ == "__main__":
    main()
