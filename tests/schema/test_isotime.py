"""ISO 8601 instants, durations and intervals: spec examples, error messages, round-trips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from worksteps.schema.isotime import (
    Interval,
    IsoTimeError,
    format_duration,
    format_instant,
    format_interval,
    parse_duration,
    parse_instant,
    parse_interval,
)
from worksteps.schema.isotypes import IsoDuration, IsoInstant, IsoInterval


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- instants --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-08-09T12:00:00Z", utc(2023, 8, 9, 12)),
        ("2023-08-09T12:00:00z", utc(2023, 8, 9, 12)),
        ("2023-08-09T12:00Z", utc(2023, 8, 9, 12)),
        ("2023-08-09T13:30:00+01:00", utc(2023, 8, 9, 12, 30)),
        ("2023-08-09T06:30:00-05:30", utc(2023, 8, 9, 12)),
        ("2023-08-09T12:00:00+0000", utc(2023, 8, 9, 12)),
        ("2023-08-09T12:00:00.5Z", utc(2023, 8, 9, 12, 0, 0, 500000)),
        # Calycopis writes nanoseconds: truncated, never rounded up.
        ("2025-11-25T05:12:49.399263503Z", utc(2025, 11, 25, 5, 12, 49, 399263)),
        ("2025-11-25T05:12:49.9999999Z", utc(2025, 11, 25, 5, 12, 49, 999999)),
        ("2023-08-09T12:00:00", utc(2023, 8, 9, 12)),  # naive is UTC
        ("2023-08-09", utc(2023, 8, 9)),  # a date is its midnight
        ("2023-01-01T00:30:00+01:00", utc(2022, 12, 31, 23, 30)),
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is not an ISO 8601 instant"),
        ("yesterday", "is not an ISO 8601 instant"),
        ("2023-08-09 12:00:00Z", "is not an ISO 8601 instant"),
        ("2023-13-01", "month must be in 1..12"),
        ("2023-02-30T00:00:00Z", "day is out of range"),
        ("2023-08-09T24:00:00Z", "hour must be in 0..23"),
        ("2023-08-09T12:00:60Z", "second must be in 0..59"),
        ("2023-08-09T12:00:00+24:00", "offset +24:00 is out of range"),
        ("0001-01-01T00:00:00+01:00", "is not a valid instant"),
    ],
)
def test_parse_instant_refuses(text: str, fragment: str) -> None:
    with pytest.raises(IsoTimeError) as info:
        parse_instant(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_error_quotes_long_input_cut_short() -> None:
    with pytest.raises(IsoTimeError) as info:
        parse_instant("x" * 10_000)
    assert len(str(info.value)) < 400
    assert "xxx..." in str(info.value)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (utc(2023, 8, 9, 12), "2023-08-09T12:00:00Z"),
        (utc(2023, 8, 9, 12, 0, 0, 500000), "2023-08-09T12:00:00.500000Z"),
        (utc(2023, 8, 9, 12, 0, 0, 1), "2023-08-09T12:00:00.000001Z"),
        (datetime(2023, 8, 9, 12), "2023-08-09T12:00:00Z"),  # naive is UTC
        (datetime(2023, 8, 9, 14, tzinfo=timezone(timedelta(hours=2))), "2023-08-09T12:00:00Z"),
        (utc(5, 1, 2, 3, 4, 5), "0005-01-02T03:04:05Z"),
    ],
)
def test_format_instant(moment: datetime, text: str) -> None:
    assert format_instant(moment) == text


_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_MOMENTS = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_OFFSETS
)


@given(_MOMENTS)
def test_instant_round_trips(moment: datetime) -> None:
    text = format_instant(moment)
    assert parse_instant(text) == moment
    assert format_instant(parse_instant(text)) == text


@given(_MOMENTS)
def test_instant_reads_python_isoformat_with_offsets(moment: datetime) -> None:
    assert parse_instant(moment.isoformat()) == moment


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT0S", timedelta(0)),
        ("PT2H", timedelta(hours=2)),
        ("PT90M", timedelta(minutes=90)),
        ("PT45S", timedelta(seconds=45)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("PT0,25S", timedelta(seconds=0.25)),
        ("PT0.0000019S", timedelta(microseconds=1)),  # truncated to microseconds
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(weeks=1)),
        ("P1W2D", timedelta(days=9)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT1H30M15.25S", timedelta(hours=1, minutes=30, seconds=15.25)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("P1H", "come after a 'T'"),  # the spec's own example, invalid ISO 8601
        ("P1Y", "calendar-dependent"),
        ("P2M", "calendar-dependent"),
        ("P1Y2M3DT4H", "calendar-dependent"),
        ("-PT1H", "negative"),
        ("P", "empty duration"),
        ("PT", "empty duration"),
        ("P1DT", "empty duration"),
        ("PT1.5H", "only seconds may have a fraction"),
        ("1H", "is not an ISO 8601 duration"),
        ("pt1h", "is not an ISO 8601 duration"),
        ("", "is not an ISO 8601 duration"),
        ("P9999999999D", "too long"),
    ],
)
def test_parse_duration_refuses(text: str, fragment: str) -> None:
    with pytest.raises(IsoTimeError) as info:
        parse_duration(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_calendar_refusal_suggests_days_or_weeks() -> None:
    with pytest.raises(IsoTimeError, match=r"days or weeks.*'P30D'"):
        parse_duration("P1M")


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(hours=2), "PT2H"),
        (timedelta(minutes=90), "PT1H30M"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=1, hours=2), "P1DT2H"),
        (timedelta(days=14), "P14D"),
        (timedelta(seconds=10), "PT10S"),
        (timedelta(seconds=0.5), "PT0.5S"),
        (timedelta(hours=1, microseconds=1), "PT1H0.000001S"),
        (timedelta(days=2, seconds=61), "P2DT1M1S"),
    ],
)
def test_format_duration_is_canonical(length: timedelta, text: str) -> None:
    assert format_duration(length) == text


def test_format_duration_refuses_negative() -> None:
    with pytest.raises(IsoTimeError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.timedeltas(min_value=timedelta(0)))
def test_duration_round_trips(length: timedelta) -> None:
    assert parse_duration(format_duration(length)) == length


@given(
    st.from_regex(
        r"P(\d{1,4}W)?(\d{1,4}D)?(T(\d{1,4}H)?(\d{1,4}M)?(\d{1,5}(\.\d{1,9})?S)?)?", fullmatch=True
    ).filter(lambda s: s not in ("P", "PT") and not s.endswith("T"))
)
def test_any_accepted_duration_has_a_stable_canonical_form(text: str) -> None:
    canonical = format_duration(parse_duration(text))
    assert format_duration(parse_duration(canonical)) == canonical
    assert parse_duration(canonical) == parse_duration(text)


# --- intervals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        # The four examples of the spec's ISO8601Interval schema.
        ("2023-08-09T12:00:00Z/2023-08-09T13:00:00Z", utc(2023, 8, 9, 12), utc(2023, 8, 9, 13)),
        ("2023-08-09/PT2H", utc(2023, 8, 9), utc(2023, 8, 9, 2)),
        ("PT2H/2023-08-09", utc(2023, 8, 9, 22), utc(2023, 8, 10)),
        ("2023-08-09/2023-08-10", utc(2023, 8, 9), utc(2023, 8, 11)),
        # As the captured responses write an exact start.
        ("2025-11-25T05:13:45Z/PT0S", utc(2025, 11, 25, 5, 13, 45), utc(2025, 11, 25, 5, 13, 45)),
        ("2023-08-09T12:00:00Z", utc(2023, 8, 9, 12), utc(2023, 8, 9, 12)),
        ("2023-08-09", utc(2023, 8, 9), utc(2023, 8, 9)),
        ("2023-08-09/2023-08-09", utc(2023, 8, 9), utc(2023, 8, 10)),
        ("2023-08-09T12:00:00Z/2023-08-09", utc(2023, 8, 9, 12), utc(2023, 8, 10)),
        ("PT1H/2023-08-09T12:00:00+02:00", utc(2023, 8, 9, 9), utc(2023, 8, 9, 10)),
    ],
)
def test_parse_interval(text: str, start: datetime, end: datetime) -> None:
    interval = parse_interval(text)
    assert (interval.start, interval.end) == (start, end)
    assert interval.duration == end - start
    assert interval.is_instant == (start == end)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("R5/2023-08-09T12:00:00Z/PT1H", "repeating interval"),
        ("2023-08-09/PT1H/PT2H", "more than one '/'"),
        ("PT1H/PT2H", "duration on both sides"),
        ("2023-08-09T13:00:00Z/2023-08-09T12:00:00Z", "ends (2023-08-09T12:00:00Z) before"),
        ("2023-08-10/2023-08-09", "end day is before the start day"),
        ("2023-08-09/", "empty side"),
        ("/PT1H", "empty side"),
        ("2023-08-09/P1H", "come after a 'T'"),
        ("2023-08-09/P1M", "calendar-dependent"),
        ("2023-08-09/-PT1H", "negative"),
        ("soon/PT1H", "is not an ISO 8601 interval start"),
        ("2023-08-09/later", "is not an ISO 8601 interval end"),
        ("P2D/0001-01-01", "beyond the year 9999 or before 0001"),
        ("9999-12-31T12:00:00Z/P1D", "beyond the year 9999 or before 0001"),
        ("9999-12-31/9999-12-31", "beyond the year 9999 or before 0001"),
    ],
)
def test_parse_interval_refuses(text: str, fragment: str) -> None:
    with pytest.raises(IsoTimeError) as info:
        parse_interval(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_interval_invariants() -> None:
    with pytest.raises(IsoTimeError, match="before it starts"):
        Interval(utc(2023, 8, 9, 13), utc(2023, 8, 9, 12))
    with pytest.raises(IsoTimeError, match="timezone-aware"):
        Interval(datetime(2023, 8, 9), datetime(2023, 8, 10))
    plus2 = timezone(timedelta(hours=2))
    shifted = Interval(
        datetime(2023, 8, 9, 14, tzinfo=plus2), datetime(2023, 8, 9, 15, tzinfo=plus2)
    )
    assert shifted.start.tzinfo == UTC
    assert shifted == Interval(utc(2023, 8, 9, 12), utc(2023, 8, 9, 13))


def test_format_interval() -> None:
    exact = Interval(utc(2025, 11, 25, 5, 13, 45), utc(2025, 11, 25, 5, 13, 45))
    assert format_interval(exact) == "2025-11-25T05:13:45Z/PT0S"
    window = Interval(utc(2023, 8, 9, 12), utc(2023, 8, 9, 13, 0, 0, 250000))
    assert format_interval(window) == "2023-08-09T12:00:00Z/2023-08-09T13:00:00.250000Z"


@given(_MOMENTS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
def test_interval_round_trips(start: datetime, length: timedelta) -> None:
    interval = Interval(start, start + length)
    text = format_interval(interval)
    assert parse_interval(text) == interval
    assert format_interval(parse_interval(text)) == text


# --- pydantic types --------------------------------------------------------------------------


class Window(BaseModel):
    at: IsoInstant
    length: IsoDuration
    start: IsoInterval | None = None


def test_pydantic_types_parse_strings_and_dump_canonical_strings() -> None:
    window = Window.model_validate(
        {"at": "2023-08-09T13:00:00+01:00", "length": "PT90M", "start": "2023-08-09/PT2H"}
    )
    assert window.at == utc(2023, 8, 9, 12)
    assert window.length == timedelta(minutes=90)
    assert window.start == Interval(utc(2023, 8, 9), utc(2023, 8, 9, 2))
    wire = {
        "at": "2023-08-09T12:00:00Z",
        "length": "PT1H30M",
        "start": "2023-08-09T00:00:00Z/2023-08-09T02:00:00Z",
    }
    assert window.model_dump() == wire
    assert Window.model_validate_json(window.model_dump_json()) == window


def test_pydantic_types_pass_typed_values_through() -> None:
    interval = Interval(utc(2023, 8, 9), utc(2023, 8, 10))
    window = Window(at=datetime(2023, 8, 9, 12), length=timedelta(hours=1), start=interval)
    assert window.at == utc(2023, 8, 9, 12)  # naive taken as UTC
    assert window.at.tzinfo is not None
    assert window.start is interval
    assert Window(at=date(2023, 8, 9), length=timedelta(0)).at == utc(2023, 8, 9)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", "9 August"),
        ("at", 1691582400),
        ("length", "P1H"),
        ("length", "P1Y"),
        ("length", 3600),
        ("length", timedelta(seconds=-1)),
        ("start", "PT1H/PT2H"),
        ("start", "2023-08-09/{x}"),
        ("start", ["2023-08-09", "PT1H"]),
    ],
)
def test_pydantic_error_message_is_the_iso_time_message(field: str, value: object) -> None:
    data: dict[str, object] = {"at": "2023-08-09T12:00:00Z", "length": "PT1H", field: value}
    with pytest.raises(ValidationError) as info:
        Window.model_validate(data)
    (error,) = info.value.errors()
    assert error["loc"] == (field,)
    parsers: dict[str, Callable[[str], object]] = {
        "at": parse_instant,
        "length": parse_duration,
        "start": parse_interval,
    }
    if isinstance(value, str):
        with pytest.raises(IsoTimeError) as direct:
            parsers[field](value)
        assert error["msg"] == str(direct.value)
    else:
        assert "expected an ISO 8601" in error["msg"] or "negative" in error["msg"]


def test_pydantic_json_schema_is_a_described_string() -> None:
    properties = Window.model_json_schema()["properties"]
    for name in ("at", "length"):
        assert properties[name]["type"] == "string"
        assert properties[name]["description"]
    assert properties["at"]["format"] == "date-time"
    assert properties["length"]["format"] == "duration"
    interval_schema = properties["start"]["anyOf"][0]
    assert interval_schema["type"] == "string"
    assert "2023-08-09/PT2H" in interval_schema["examples"]
    serial = Window.model_json_schema(mode="serialization")["properties"]
    assert serial["at"]["type"] == "string"
