"""Signed cookie values: any change to value, purpose, key or age makes them worthless."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worksteps.gateway.web.signing import CookieSigner


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_round_trips_for_its_purpose_only() -> None:
    signer = CookieSigner("k" * 32)
    value = signer.dumps("session", {"sid": "abc", "tok": "t"})
    payload = signer.loads("session", value, max_age=60)
    assert payload is not None
    assert (payload["sid"], payload["tok"]) == ("abc", "t")
    assert signer.loads("signin", value, max_age=60) is None
    assert CookieSigner("j" * 32).loads("session", value, max_age=60) is None


def test_age_is_bounded_both_ways() -> None:
    clock = Clock()
    signer = CookieSigner("k" * 32, clock=clock)
    value = signer.dumps("session", {"sid": "abc"})
    clock.now += 60
    assert signer.loads("session", value, max_age=60) is not None
    clock.now += 1
    assert signer.loads("session", value, max_age=60) is None
    clock.now -= 200  # signed "in the future": a clock far off, or a forgery
    assert signer.loads("session", value, max_age=60) is None


@pytest.mark.parametrize("junk", ["", ".", "a.b", "a.b.c", "é.x", "x" * 500])
def test_junk_is_refused(junk: str) -> None:
    assert CookieSigner("k" * 32).loads("session", junk, max_age=60) is None


@given(st.integers(min_value=0), st.characters(codec="ascii"))
def test_any_single_character_change_is_refused(position: int, replacement: str) -> None:
    signer = CookieSigner("k" * 32)
    value = signer.dumps("session", {"sid": "abc", "tok": "header.body.signature"})
    index = position % len(value)
    if value[index] == replacement:
        return
    changed = value[:index] + replacement + value[index + 1 :]
    assert signer.loads("session", changed, max_age=60) is None
