"""ISO 8601 instants, durations and intervals as the ExecutionBroker schema uses them.

Invariants:

- Every instant this module returns is timezone-aware and in UTC. Input without an offset is
  taken as UTC (the brokers of a federation must agree on one clock, and the captured
  Calycopis responses are all UTC).
- A duration is an exact length of time. Years and months (``P1Y``, ``P2M``) have no fixed
  length, so they are refused with a hint to use days or weeks; negative durations are refused.
- An :class:`Interval` is the window in which a start may fall (IVOA ExecutionBroker §Time).
  ``start == end`` means an exact start; it is written ``<start>/PT0S`` as the captured
  responses do. A date-only *end* means the end of that day (the next midnight, UTC), so
  ``2023-08-09/2023-08-10`` covers two whole days; a date-only start means that midnight.
- ``format_*`` and ``parse_*`` round-trip: ``parse_x(format_x(v)) == v`` for every value the
  formatters accept. Formatting is canonical (the shortest form, microseconds only when
  non-zero), so equal values always give equal strings.
- Sub-microsecond digits (the Java broker writes nanoseconds) are truncated, never rounded,
  so a parsed instant is never later than the one written.

The pydantic types that hold these values in a model are in :mod:`.isotypes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

__all__ = [
    "Interval",
    "IsoTimeError",
    "as_utc",
    "format_duration",
    "format_instant",
    "format_interval",
    "parse_duration",
    "parse_instant",
    "parse_interval",
]

_MAX_QUOTED = 80
# Parsed and written texts are remembered: an offer set repeats the same few instants and
# durations in every offer and component (a broker's answer of 4 offers has ~80, ~10 distinct).
_REMEMBERED = 4096

_DATE = r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
_TIME = (
    r"[Tt](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?"
    r"(?P<offset>[Zz]|[+-]\d{2}:?\d{2}|[+-]\d{2})?"
)
_INSTANT_RE = re.compile(rf"{_DATE}(?:{_TIME})?")
_OFFSET_RE = re.compile(r"(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})?")

_DURATION_RE = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)(?:[.,](?P<fraction>\d+))?S)?)?"
)
# Only used to explain a refusal: a Y or M component before any T.
_CALENDAR_RE = re.compile(r"-?P(?:[\d.,]+[YMWD])*?[\d.,]+[YM]")


class IsoTimeError(ValueError):
    """A value is not an ISO 8601 instant, duration or interval this schema accepts.

    The message quotes the bad value and says what is expected; it is shown to users as is.
    """


def _quote(value: str) -> str:
    """Quote user input for a message, cut short so an error never echoes a huge body."""
    if len(value) > _MAX_QUOTED:
        value = value[: _MAX_QUOTED - 3] + "..."
    return repr(value)


def as_utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive datetime is taken as UTC."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _micros(fraction: str | None) -> int:
    """Microseconds from the digits after the decimal point, truncating beyond six."""
    if not fraction:
        return 0
    return int(fraction[:6].ljust(6, "0"))


def _parse_offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    match = _OFFSET_RE.fullmatch(text)
    if match is None:  # pragma: no cover - _INSTANT_RE only lets valid shapes through
        raise ValueError(f"bad offset {text!r}")
    hours, minutes = int(match["hours"]), int(match["minutes"] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {text} is out of range (at most ±23:59)")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if match["sign"] == "-" else delta)


@lru_cache(maxsize=_REMEMBERED)
def _parse_instant(text: str, *, what: str) -> tuple[datetime, bool]:
    """Parse an instant and say whether it was date-only."""
    match = _INSTANT_RE.fullmatch(text)
    if match is None:
        raise IsoTimeError(
            f"{_quote(text)} is not an ISO 8601 {what}: expected a date and time such as "
            "'2023-08-09T12:00:00Z' (offsets like '+01:00' and fractional seconds are "
            "allowed) or a date such as '2023-08-09'"
        )
    try:
        if match["hour"] is None:
            day = date(int(match["year"]), int(match["month"]), int(match["day"]))
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        tz = _parse_offset(match["offset"]) if match["offset"] else UTC
        moment = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            _micros(match["fraction"]),
            tzinfo=tz,
        )
        return moment.astimezone(UTC), False
    except (ValueError, OverflowError) as exc:
        raise IsoTimeError(f"{_quote(text)} is not a valid {what}: {exc}") from exc


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant (or a date, meaning its midnight) into an aware UTC datetime."""
    return _parse_instant(text, what="instant")[0]


@lru_cache(maxsize=_REMEMBERED)
def format_instant(moment: datetime) -> str:
    """Write ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC; a naive datetime is taken as UTC."""
    utc = as_utc(moment)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def _duration_refusal(text: str) -> str:
    """The most helpful explanation of why ``text`` is not an accepted duration."""
    if text.startswith("-"):
        return f"{_quote(text)} is a negative duration; durations must be zero or positive"
    if _CALENDAR_RE.match(text):
        return (
            f"{_quote(text)} uses years or months, which are calendar-dependent (a month has "
            "28 to 31 days); give the length in days or weeks instead, e.g. 'P30D' or 'P4W'"
        )
    if text in ("P", "PT") or text.endswith("T"):
        return f"{_quote(text)} is an empty duration; give at least one number, e.g. 'PT0S'"
    if text.startswith("P") and "T" not in text and re.search(r"\d[HS]", text):
        return (
            f"{_quote(text)} is not an ISO 8601 duration: hours, minutes and seconds come "
            "after a 'T', e.g. 'PT1H'"
        )
    return (
        f"{_quote(text)} is not an ISO 8601 duration: expected e.g. 'PT2H', 'PT90M', "
        "'PT1.5S', 'P1D', 'P1W' or 'P1DT2H30M' (only seconds may have a fraction)"
    )


@lru_cache(maxsize=_REMEMBERED)
def parse_duration(text: str) -> timedelta:
    """Parse an exact, non-negative ISO 8601 duration (weeks, days, hours, minutes, seconds)."""
    match = _DURATION_RE.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise IsoTimeError(_duration_refusal(text))
    try:
        return timedelta(
            weeks=int(match["weeks"] or 0),
            days=int(match["days"] or 0),
            hours=int(match["hours"] or 0),
            minutes=int(match["minutes"] or 0),
            seconds=int(match["seconds"] or 0),
            microseconds=_micros(match["fraction"]),
        )
    except OverflowError as exc:
        raise IsoTimeError(
            f"{_quote(text)} is too long a duration (at most 999999999 days)"
        ) from exc


@lru_cache(maxsize=_REMEMBERED)
def format_duration(length: timedelta) -> str:
    """Write the canonical shortest form: ``PT0S``, ``PT1H30M``, ``P1DT2H``, ``PT0.5S``."""
    if length < timedelta(0):
        raise IsoTimeError(f"{length} is a negative duration; durations must be zero or positive")
    hours, rest = divmod(length.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    date_part = f"{length.days}D" if length.days else ""
    time_part = ""
    if hours:
        time_part += f"{hours}H"
    if minutes:
        time_part += f"{minutes}M"
    if length.microseconds:
        time_part += f"{seconds}.{length.microseconds:06d}".rstrip("0") + "S"
    elif seconds:
        time_part += f"{seconds}S"
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + (f"T{time_part}" if time_part else "")


@dataclass(frozen=True)
class Interval:
    """A closed window ``[start, end]`` of UTC instants in which something may start.

    Both ends are aware and stored in UTC; ``end`` is never before ``start``.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise IsoTimeError("an interval needs timezone-aware instants (use UTC)")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end < self.start:
            raise IsoTimeError(
                f"the interval ends ({format_instant(self.end)}) before it starts "
                f"({format_instant(self.start)})"
            )

    @property
    def duration(self) -> timedelta:
        """How long the window is; zero for an exact start."""
        return self.end - self.start

    @property
    def is_instant(self) -> bool:
        """True when the window is one exact instant."""
        return self.start == self.end


def _is_duration(part: str) -> bool:
    return part.startswith(("P", "-P"))


@lru_cache(maxsize=_REMEMBERED)
def parse_interval(text: str) -> Interval:
    """Parse ``start/end``, ``start/duration``, ``duration/end`` or a bare instant."""
    if text.startswith("R"):
        raise IsoTimeError(
            f"{_quote(text)} is a repeating interval; the schema only accepts a single "
            "interval such as '2023-08-09T12:00:00Z/PT2H'"
        )
    parts = text.split("/")
    if len(parts) == 1:
        moment = parse_instant(text)
        return Interval(moment, moment)
    if len(parts) > 2:
        raise IsoTimeError(
            f"{_quote(text)} has more than one '/'; an interval is 'start/end', "
            "'start/duration' or 'duration/end'"
        )
    first, second = parts
    if not first or not second:
        raise IsoTimeError(
            f"{_quote(text)} has an empty side; an interval is 'start/end', "
            "'start/duration' or 'duration/end'"
        )
    if _is_duration(first) and _is_duration(second):
        raise IsoTimeError(
            f"{_quote(text)} gives a duration on both sides; one side must be an instant"
        )
    try:
        if _is_duration(first):
            end = _parse_end(second)
            return Interval(end - parse_duration(first), end)
        start, start_is_date = _parse_instant(first, what="interval start")
        if _is_duration(second):
            return Interval(start, start + parse_duration(second))
        end, end_is_date = _parse_instant(second, what="interval end")
        if end_is_date:
            if start_is_date and end < start:
                # '2023-08-10/2023-08-09' is a mistake, not an empty window at midnight.
                raise IsoTimeError("the end day is before the start day")
            end += timedelta(days=1)
        return Interval(start, end)
    except OverflowError as exc:
        raise IsoTimeError(f"{_quote(text)} reaches beyond the year 9999 or before 0001") from exc
    except IsoTimeError as exc:
        raise IsoTimeError(f"in interval {_quote(text)}: {exc}") from exc


def _parse_end(text: str) -> datetime:
    moment, date_only = _parse_instant(text, what="interval end")
    return moment + timedelta(days=1) if date_only else moment


def format_interval(interval: Interval) -> str:
    """Write ``<start>/PT0S`` for an exact start, else ``<start>/<end>``."""
    start = format_instant(interval.start)
    if interval.is_instant:
        return f"{start}/PT0S"
    return f"{start}/{format_instant(interval.end)}"
