"""The planner's values: resource vectors, bookings, demands and offered slots.

All are frozen, slotted dataclasses so they can be shared, hashed and compared freely.

Invariants:

- A :class:`Resources` is a plain vector over the four resource names (``cores``, ``memory`` in
  GiB, ``gpus``, ``storage`` in GiB) and may hold negative values as an intermediate result of
  arithmetic; everything that describes something real (a booking, a demand, a capacity, a slot)
  is validated to be non-negative.
- Time intervals are half-open ``[start, end)`` with ``start < end``: a booking ending at ``t``
  and another starting at ``t`` never overlap, and a zero-length booking is refused because it
  would reserve nothing while still looking like a reservation.
- Datetimes are compared as given. Use timezone-aware UTC instants throughout (mixing naive and
  aware datetimes raises ``TypeError`` on comparison, and ``+ timedelta`` on a zone with daylight
  saving time is wall-clock arithmetic, not elapsed time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

__all__ = ["RESOURCE_NAMES", "RESOURCE_UNITS", "Booking", "Demand", "Resources", "Slot"]

RESOURCE_NAMES: tuple[str, ...] = ("cores", "memory", "gpus", "storage")
"""The resource names, in field order. Wire formats and messages use exactly these words."""

RESOURCE_UNITS: dict[str, str] = {"cores": "", "memory": " GiB", "gpus": "", "storage": " GiB"}
"""The unit suffix to print after an amount of each resource (counts have none)."""


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of each resource: cores, memory (GiB), GPUs and scratch storage (GiB)."""

    cores: int
    memory: int
    gpus: int = 0
    storage: int = 0

    @staticmethod
    def names() -> tuple[str, ...]:
        """The resource names in field order: ``cores``, ``memory``, ``gpus``, ``storage``."""
        return RESOURCE_NAMES

    @classmethod
    def zero(cls) -> Resources:
        return cls(0, 0, 0, 0)

    @classmethod
    def from_tuple(cls, values: tuple[int, ...] | list[int]) -> Resources:
        cores, memory, gpus, storage = values
        return cls(cores, memory, gpus, storage)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.cores, self.memory, self.gpus, self.storage)

    def items(self) -> Iterator[tuple[str, int]]:
        """``(name, amount)`` pairs in field order."""
        return zip(RESOURCE_NAMES, self.as_tuple(), strict=True)

    def __getitem__(self, name: str) -> int:
        if name not in RESOURCE_NAMES:
            raise KeyError(name)
        value: int = getattr(self, name)
        return value

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cores + other.cores,
            self.memory + other.memory,
            self.gpus + other.gpus,
            self.storage + other.storage,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cores - other.cores,
            self.memory - other.memory,
            self.gpus - other.gpus,
            self.storage - other.storage,
        )

    def fits_within(self, other: Resources) -> bool:
        """True when every field is at most the same field of ``other``."""
        return (
            self.cores <= other.cores
            and self.memory <= other.memory
            and self.gpus <= other.gpus
            and self.storage <= other.storage
        )

    def min(self, other: Resources) -> Resources:
        """The per-field minimum of the two vectors."""
        return Resources(
            min(self.cores, other.cores),
            min(self.memory, other.memory),
            min(self.gpus, other.gpus),
            min(self.storage, other.storage),
        )

    def max(self, other: Resources) -> Resources:
        """The per-field maximum of the two vectors."""
        return Resources(
            max(self.cores, other.cores),
            max(self.memory, other.memory),
            max(self.gpus, other.gpus),
            max(self.storage, other.storage),
        )

    def floored_at_zero(self) -> Resources:
        """The vector with every negative field replaced by 0."""
        return self.max(_ZERO)

    def is_nonnegative(self) -> bool:
        return self.cores >= 0 and self.memory >= 0 and self.gpus >= 0 and self.storage >= 0

    def require_nonnegative(self, what: str) -> None:
        """Raise ``ValueError`` naming the first negative field, e.g. ``capacity.cores``."""
        for name, value in self.items():
            if value < 0:
                raise ValueError(f"{what}.{name} must be >= 0, got {value}")

    def describe(self) -> str:
        """Human text such as ``4 cores, 16 GiB memory, 1 gpus, 0 GiB storage``."""
        return ", ".join(f"{value}{RESOURCE_UNITS[name]} {name}" for name, value in self.items())


_ZERO = Resources(0, 0, 0, 0)


def _require_interval(start: datetime, end: datetime, what: str) -> None:
    if not start < end:
        raise ValueError(
            f"{what} must end after it starts (half-open [start, end)): "
            f"start {start.isoformat()}, end {end.isoformat()}"
        )


@dataclass(frozen=True, slots=True)
class Booking:
    """Resources held over ``[start, end)``; an offered hold and a confirmed booking are alike."""

    start: datetime
    end: datetime
    resources: Resources

    def __post_init__(self) -> None:
        _require_interval(self.start, self.end, "a booking")
        self.resources.require_nonnegative("booking")


@dataclass(frozen=True, slots=True)
class Demand:
    """What a request needs (``minimum``) and the most it can use (``maximum``), per field.

    The caller defaults ``maximum`` to ``minimum``; here both are required so that an omitted
    maximum can never silently become something smaller than the minimum.
    """

    minimum: Resources
    maximum: Resources

    def __post_init__(self) -> None:
        self.minimum.require_nonnegative("minimum")
        self.maximum.require_nonnegative("maximum")
        for field in fields(Resources):
            low = getattr(self.minimum, field.name)
            high = getattr(self.maximum, field.name)
            if high < low:
                raise ValueError(f"{field.name}: maximum {high} is below minimum {low}")

    @classmethod
    def exactly(cls, resources: Resources) -> Demand:
        """A demand whose maximum equals its minimum."""
        return cls(resources, resources)


@dataclass(frozen=True, slots=True)
class Slot:
    """One offer: the start, the end (start + requested duration) and the granted resources."""

    start: datetime
    end: datetime
    resources: Resources

    def __post_init__(self) -> None:
        _require_interval(self.start, self.end, "a slot")
        self.resources.require_nonnegative("slot")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def as_booking(self) -> Booking:
        """The hold this offer places on the calendar."""
        return Booking(self.start, self.end, self.resources)
