"""The poll schedule: fast first, then at the learned duration of the step's kind, then
backing off within bounds; every delay positive and never beyond ``poll_max``."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from worksteps.broker.engine.timing import PollTiming
from worksteps.broker.settings import EngineSettings

SETTINGS = EngineSettings(poll_min=0.05, poll_max=5.0, poll_growth=1.6, jitter=0.2)


def _schedule(timing: PollTiming, kind: str, duration: float) -> tuple[list[float], float]:
    """Poll ages of one step that finishes ``duration`` s after submission, as the worker
    polls it; and the age at which it was seen done (learnt by ``timing``)."""
    age = timing.first(kind)
    interval = SETTINGS.poll_min
    polls = [age]
    running = 0.0
    while age < duration:
        running = age
        delay, interval = timing.next(kind, age, interval, moved=False)
        age += delay
        polls.append(age)
    timing.learn(kind, running, age)
    return polls, age


def test_without_history_polls_back_off_geometrically() -> None:
    timing = PollTiming(SETTINGS, random.Random(1))
    polls, seen = _schedule(timing, "stage", 2.0)
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    assert polls[0] == SETTINGS.poll_min
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))
    assert seen - 2.0 < 0.6 * 2.0  # overshoot bounded by the growth, as before


def test_history_brings_detection_close_to_the_usual_duration() -> None:
    timing = PollTiming(SETTINGS, random.Random(2))
    overshoot = []
    for _ in range(8):
        _, seen = _schedule(timing, "launch", 0.5)
        overshoot.append(seen - 0.5)
    assert overshoot[0] > 0.1  # the first one backs off past it
    assert max(overshoot[-3:]) < 0.01  # later ones are polled right after it ends
    polls, _ = _schedule(timing, "launch", 0.5)
    assert len(polls) <= 4  # and with few polls


def test_a_quicker_step_is_still_caught_by_the_first_poll() -> None:
    timing = PollTiming(SETTINGS, random.Random(3))
    for _ in range(5):
        _schedule(timing, "stage", 1.0)
    polls, seen = _schedule(timing, "stage", 0.01)  # data already local, say
    assert polls == [SETTINGS.poll_min] and seen == SETTINGS.poll_min


def test_a_slower_step_falls_back_to_backing_off() -> None:
    timing = PollTiming(SETTINGS, random.Random(4))
    for _ in range(5):
        _schedule(timing, "place", 0.2)
    _, seen = _schedule(timing, "place", 3.0)
    assert 3.0 <= seen < 3.0 * 1.6 + 0.2


def test_progress_polls_soon_and_monitors_keep_their_interval() -> None:
    timing = PollTiming(SETTINGS, random.Random(5))
    assert timing.next("place", 0.3, 1.0, moved=True) == (SETTINGS.poll_min, SETTINGS.poll_min)
    assert timing.first("monitor") == SETTINGS.monitor_interval
    delay, _ = timing.next("monitor", 10.0, 0.05, moved=False)
    assert delay == SETTINGS.monitor_interval
    timing.learn("monitor", 1.0, 2.0)
    assert timing.targets("monitor") == []


@given(
    durations=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=12),
    age=st.floats(0.0, 60.0),
    interval=st.floats(0.01, 10.0),
    moved=st.booleans(),
    unknown_age=st.booleans(),
)
def test_every_delay_is_positive_and_bounded(
    durations: list[float], age: float, interval: float, moved: bool, unknown_age: bool
) -> None:
    timing = PollTiming(SETTINGS, random.Random(6))
    for duration in durations:
        timing.learn("stage", max(0.0, duration - 0.05), duration + 0.01)
    delay, stored = timing.next("stage", None if unknown_age else age, interval, moved)
    assert 0 < delay <= SETTINGS.poll_max * (1 + SETTINGS.jitter)
    assert SETTINGS.poll_min <= stored <= SETTINGS.poll_max


def test_longest_is_the_longest_recent_duration_of_the_kind() -> None:
    # the worker starts the kinds that usually take longest first
    timing = PollTiming(SETTINGS, random.Random(4))
    assert timing.longest("stage") == 0.0
    timing.learn("stage", 0.3, 0.4)
    timing.learn("stage", 0.35, 0.45)
    timing.learn("area", 0.0, 0.01)
    assert timing.longest("stage") == 0.45
    assert timing.longest("area") == 0.01
    assert timing.longest("monitor") == 0.0
