"""The broker's planner: a capacity calendar and the offers found in it.

Pure Python over frozen dataclasses: no database, no HTTP, no clock (every instant is passed
in). The broker loads the bookings overlapping ``[window_start, window_end + duration]``
(holds and confirmed sessions alike), builds a :class:`Calendar`, and asks
:func:`plan_offers` for slots; when there are none, :func:`explain_shortfall` says why.

Invariants: offers start inside the requested window, grant within ``[min, max]`` per resource
and, taken together with the existing bookings, never overcommit the site.
"""

from worksteps.broker.planner.calendar import Calendar
from worksteps.broker.planner.model import (
    RESOURCE_NAMES,
    Booking,
    Demand,
    Resources,
    Slot,
)
from worksteps.broker.planner.offers import DEFAULT_MAX_OFFERS, plan_offers
from worksteps.broker.planner.shortfall import ResourceShortfall, Shortfall, explain_shortfall

__all__ = [
    "DEFAULT_MAX_OFFERS",
    "RESOURCE_NAMES",
    "Booking",
    "Calendar",
    "Demand",
    "ResourceShortfall",
    "Resources",
    "Shortfall",
    "Slot",
    "explain_shortfall",
    "plan_offers",
]
