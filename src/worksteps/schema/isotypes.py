"""The pydantic types of ISO 8601 instants, durations and intervals (:mod:`.isotime`).

:data:`IsoInstant`, :data:`IsoDuration` and :data:`IsoInterval` hold the Python value in a
model and the canonical string on the wire (every dump, python or JSON mode, so the codecs
always receive JSON-like data). Input that is not a valid value gets a pydantic error whose
message is :mod:`.isotime`'s explanation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from worksteps.schema.isotime import (
    Interval,
    IsoTimeError,
    as_utc,
    format_duration,
    format_instant,
    format_interval,
    parse_duration,
    parse_instant,
    parse_interval,
)

__all__ = ["IsoDuration", "IsoInstant", "IsoInterval"]


def _pydantic_error(kind: str, exc: IsoTimeError) -> PydanticCustomError:
    # The message goes through the context so braces in user input are never re-formatted.
    return PydanticCustomError(kind, "{reason}", {"reason": str(exc)})


def _wrong_type(value: object, expected: str) -> IsoTimeError:
    return IsoTimeError(f"expected {expected} as a string, got {type(value).__name__}")


def _to_instant(value: Any) -> datetime:
    try:
        if isinstance(value, datetime):
            return as_utc(value)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        if isinstance(value, str):
            return parse_instant(value)
        raise _wrong_type(value, "an ISO 8601 instant")
    except IsoTimeError as exc:
        raise _pydantic_error("iso8601_instant", exc) from exc


def _to_duration(value: Any) -> timedelta:
    try:
        if isinstance(value, timedelta):
            if value < timedelta(0):
                raise IsoTimeError(
                    f"{value} is a negative duration; durations must be zero or positive"
                )
            return value
        if isinstance(value, str):
            return parse_duration(value)
        raise _wrong_type(value, "an ISO 8601 duration")
    except IsoTimeError as exc:
        raise _pydantic_error("iso8601_duration", exc) from exc


def _to_interval(value: Any) -> Interval:
    try:
        if isinstance(value, Interval):
            return value
        if isinstance(value, str):
            return parse_interval(value)
        raise _wrong_type(value, "an ISO 8601 interval")
    except IsoTimeError as exc:
        raise _pydantic_error("iso8601_interval", exc) from exc


IsoInstant = Annotated[
    datetime,
    BeforeValidator(_to_instant),
    PlainSerializer(format_instant, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "An ISO 8601 instant, e.g. '2023-08-09T12:00:00Z'; no offset means UTC.",
            "examples": ["2023-08-09T12:00:00Z"],
        }
    ),
]
"""A UTC datetime in Python, ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` on the wire."""

IsoDuration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "duration",
            "description": "An exact ISO 8601 duration in weeks, days, hours, minutes and "
            "seconds, e.g. 'PT2H' or 'P1DT30M' (no years or months).",
            "examples": ["PT2H", "P1DT30M"],
        }
    ),
]
"""A non-negative timedelta in Python, a canonical ISO 8601 duration on the wire."""

IsoInterval = Annotated[
    Interval,
    BeforeValidator(_to_interval),
    PlainSerializer(format_interval, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "An ISO 8601 interval: the window in which the start may fall, "
            "as 'start/end', 'start/duration' or 'duration/end'; a bare instant is an "
            "exact start.",
            "examples": [
                "2023-08-09T12:00:00Z/2023-08-09T13:00:00Z",
                "2023-08-09/PT2H",
            ],
        }
    ),
]
"""An :class:`Interval` in Python, ``start/end`` (or ``start/PT0S``) on the wire."""
