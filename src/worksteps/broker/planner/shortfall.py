"""Why a request got no offer, in numbers and in plain English.

:func:`explain_shortfall` is meant for the case where :func:`~.offers.plan_offers` returned no
slot. It answers two questions a user asks next: which resources are short (and by how much,
compared with the best the window had to offer and with the site's size), and when would the
request fit instead.

Invariants: a resource whose minimum exceeds the site's capacity is always listed, and then
``earliest_fit`` is None ("can never fit"). ``best_free`` is taken per resource on its own, so
a resource can be listed with ``best_free >= requested_min`` when it is free enough at some
start but never at a start where the other resources are free too; the message says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from worksteps.broker.planner.calendar import Calendar
from worksteps.broker.planner.model import RESOURCE_NAMES, RESOURCE_UNITS, Demand
from worksteps.schema.isotime import format_duration, format_instant

__all__ = ["ResourceShortfall", "Shortfall", "explain_shortfall"]


@dataclass(frozen=True, slots=True)
class ResourceShortfall:
    """One resource whose minimum was not met at the best start in the window."""

    name: str
    requested_min: int
    best_free: int
    capacity: int

    @property
    def exceeds_capacity(self) -> bool:
        return self.requested_min > self.capacity

    def message(self, duration: timedelta) -> str:
        unit = RESOURCE_UNITS.get(self.name, "")
        need = f"{self.name}: at least {self.requested_min}{unit} needed"
        site = f"(site capacity {self.capacity}{unit})"
        span = f"for {format_duration(duration)} in the requested window"
        if self.exceeds_capacity:
            return f"{need}, but the site has only {self.capacity}{unit}"
        if self.best_free < self.requested_min:
            return f"{need}, at most {self.best_free}{unit} free {span} {site}"
        return (
            f"{need}; up to {self.best_free}{unit} free {span}, but never at a start where "
            f"the other resources are free too {site}"
        )


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The short resources and the earliest start (after the window) where the request fits."""

    resources: list[ResourceShortfall]
    earliest_fit: datetime | None
    duration: timedelta
    horizon_end: datetime

    @property
    def never_fits(self) -> bool:
        """True when the minimum exceeds the site's capacity in some resource."""
        return any(item.exceeds_capacity for item in self.resources)

    def messages(self) -> list[str]:
        """One sentence per short resource, then one about when the request would fit."""
        lines = [item.message(self.duration) for item in self.resources]
        if self.earliest_fit is not None:
            lines.append(f"the request would fit from {format_instant(self.earliest_fit)}")
        elif self.never_fits:
            reasons = " and ".join(
                f"more {item.name} than the site has ({item.capacity}"
                f"{RESOURCE_UNITS.get(item.name, '')})"
                for item in self.resources
                if item.exceeds_capacity
            )
            lines.append(f"the request can never fit: it needs {reasons}")
        else:
            lines.append(
                f"the request does not fit at any start before {format_instant(self.horizon_end)}"
            )
        return lines


def explain_shortfall(
    calendar: Calendar,
    demand: Demand,
    window_start: datetime,
    window_end: datetime,
    duration: timedelta,
    horizon_end: datetime,
) -> Shortfall:
    """Explain why ``demand`` does not fit in the start window (see the module docstring).

    The best start is the candidate start with the fewest short resources, then the smallest
    total shortage relative to capacity, then the earliest. ``earliest_fit`` is searched from
    ``window_end`` up to (not including) ``horizon_end``; the calendar must hold the bookings
    overlapping ``[window_start, horizon_end + duration]`` for it to be right.
    """
    capacity = calendar.capacity.as_tuple()
    minimum = demand.minimum.as_tuple()
    best_free = [0, 0, 0, 0]
    best_key: tuple[int, float] | None = None
    short_at_best: list[int] = []
    for _start, free in calendar.sweep_free(window_start, window_end, duration):
        amounts = free.as_tuple()
        short = [r for r in range(4) if amounts[r] < minimum[r]]
        key = (
            len(short),
            sum((minimum[r] - amounts[r]) / max(capacity[r], 1) for r in short),
        )
        if best_key is None or key < best_key:
            best_key, short_at_best = key, short
        best_free = [max(a, b) for a, b in zip(best_free, amounts, strict=True)]
    resources = [
        ResourceShortfall(RESOURCE_NAMES[r], minimum[r], best_free[r], capacity[r])
        for r in short_at_best
    ]
    earliest_fit = None
    if window_end < horizon_end:
        found = calendar.earliest_start(demand.minimum, window_end, horizon_end, duration)
        if found is not None and found < horizon_end:
            earliest_fit = found
    return Shortfall(resources, earliest_fit, duration, horizon_end)
