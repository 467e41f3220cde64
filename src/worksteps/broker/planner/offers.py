"""Offer generation: a few mutually compatible slots for one request, from a capacity calendar.

Guarantees of :func:`plan_offers`, for any calendar:

- every slot starts inside the requested start window ``[window_start, window_end]`` (both ends
  inclusive; equal ends mean an exact start) and lasts exactly ``duration``;
- every slot grants, per resource, at least the demand's minimum and at most its maximum;
- the slots are placed one after the other on a private excerpt of the calendar, so even if
  every offer were accepted no instant would be overcommitted (nothing is placed on an instant
  whose usage already exceeds capacity, except in fields where the grant is 0);
- the result is deterministic and ordered by start time.

The caller's calendar is not modified: add ``slot.as_booking()`` for each offer that becomes a
hold.

Policy, stopping at ``max_offers``:

1. EARLIEST: the earliest start where the minimum fits, granting per resource the most that
   fits there, capped at the maximum.
2. LARGEST: if offer 1 is short of the maximum in some resource, the earliest start where the
   whole maximum fits; failing that, the start whose grant is the fullest (share of each
   resource's [min, max] range, summed; earliest on ties) among those granting at least as much
   as offer 1 in every resource and more in one. Skipped if no start is better.
3. LATER ALTERNATIVES: repeatedly the earliest start at or after the previous alternative's
   start plus the duration (the first "previous" is offer 1), granting the most that fits. A
   start already offered by LARGEST counts as that alternative and is not offered twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from worksteps.broker.planner.calendar import Calendar
from worksteps.broker.planner.model import Demand, Resources, Slot

__all__ = ["DEFAULT_MAX_OFFERS", "plan_offers"]

DEFAULT_MAX_OFFERS = 4


def plan_offers(
    calendar: Calendar,
    demand: Demand,
    window_start: datetime,
    window_end: datetime,
    duration: timedelta,
    max_offers: int = DEFAULT_MAX_OFFERS,
) -> list[Slot]:
    """Up to ``max_offers`` compatible slots for ``demand`` (see the module docstring)."""
    if window_end < window_start:
        raise ValueError("the start window ends before it begins")
    if duration <= timedelta(0):
        raise ValueError(f"the duration must be positive, got {duration}")
    if max_offers < 0:
        raise ValueError(f"max_offers must be >= 0, got {max_offers}")
    if max_offers == 0:
        return []
    work = calendar.excerpt(window_start, window_end + duration)
    offers: list[Slot] = []

    def place(slot: Slot) -> None:
        offers.append(slot)
        work.add(slot.as_booking())

    first = _most_at_earliest(work, demand, window_start, window_end, duration)
    if first is None:
        return []
    place(first)

    if len(offers) < max_offers and first.resources != demand.maximum:
        larger = _larger_than(work, demand, first.resources, window_start, window_end, duration)
        if larger is not None:
            place(larger)

    previous = first.start
    while len(offers) < max_offers and previous + duration <= window_end:
        alternative = _most_at_earliest(work, demand, previous + duration, window_end, duration)
        if alternative is None:
            break
        previous = alternative.start
        if all(offer.start != alternative.start for offer in offers):
            place(alternative)

    offers.sort(key=lambda slot: slot.start)  # stable: LARGEST stays after EARLIEST on ties
    return offers


def _most_at_earliest(
    calendar: Calendar,
    demand: Demand,
    window_start: datetime,
    window_end: datetime,
    duration: timedelta,
) -> Slot | None:
    """The earliest start where the minimum fits, granting the most that fits up to the max."""
    start = calendar.earliest_start(demand.minimum, window_start, window_end, duration)
    if start is None:
        return None
    end = start + duration
    return Slot(start, end, calendar.free_during(start, end).min(demand.maximum))


def _larger_than(
    calendar: Calendar,
    demand: Demand,
    granted: Resources,
    window_start: datetime,
    window_end: datetime,
    duration: timedelta,
) -> Slot | None:
    """A start granting strictly more than ``granted`` (ideally the maximum), or None."""
    start = calendar.earliest_start(demand.maximum, window_start, window_end, duration)
    if start is not None:
        return Slot(start, start + duration, demand.maximum)
    best: Slot | None = None
    best_fullness = -1.0
    for candidate, free in calendar.sweep_free(window_start, window_end, duration):
        grant = free.min(demand.maximum)
        if grant == granted or not granted.fits_within(grant):
            continue
        fullness = _fullness(grant, demand)
        if fullness > best_fullness:
            best, best_fullness = Slot(candidate, candidate + duration, grant), fullness
    return best


def _fullness(grant: Resources, demand: Demand) -> float:
    """How much of each resource's [min, max] range is granted, summed over the resources."""
    total = 0.0
    for low, high, got in zip(
        demand.minimum.as_tuple(), demand.maximum.as_tuple(), grant.as_tuple(), strict=True
    ):
        if high > low:
            total += (got - low) / (high - low)
    return total
