"""When to poll a step next: fast first, then at the age at which steps of its kind have
recently finished, then backing off, with jitter.

Every step kind has a recent history of *brackets*: the age (seconds since its submission
returned) of the last poll that found the step still running, and the age of the poll that
found it done. The true duration lies between the two. For a new step of that kind the worker
polls once at ``poll_min`` (which catches the steps that finish at once, say data already in
place), then at the middle of the recent brackets (the greatest "still running" and the least
"done"), then, while the step is no more than twice as old as the longest recent "done" (it
is late, and likely to finish any moment), every tenth of its age (at least ``poll_min``,
at most ``poll_max``); beyond that it backs off by ``poll_growth`` up to ``poll_max``. So the
polls close in on the kind's usual duration over successive steps instead of overshooting
it by up to ``poll_growth`` times, while a kind that has no history, or a step that takes
far longer than usual, is polled as before. Progress
(bytes moving) resets the delay to ``poll_min`` (or less, when a target comes sooner).
Backoff delays are spread by ``jitter``; the learned targets are not, since they are spread
in time by the steps' own start times.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from worksteps.broker.settings import EngineSettings

__all__ = ["Bracket", "PollTiming"]

_HISTORY = 5  # brackets kept per kind: enough to smooth noise, few enough to follow a change


@dataclass(frozen=True)
class Bracket:
    """A finished step's duration lies in (``running``, ``done``] seconds after submission."""

    running: float
    done: float


class PollTiming:
    """The poll schedule of the worker's steps, learning each kind's usual duration."""

    def __init__(self, settings: EngineSettings, rng: random.Random | None = None) -> None:
        self.cfg = settings
        self._random = rng or random.Random()
        self._history: dict[str, deque[Bracket]] = {}

    def spread(self, seconds: float) -> float:
        jitter = self.cfg.jitter
        return seconds * (1 + self._random.uniform(-jitter, jitter))

    def targets(self, kind: str) -> list[float]:
        """Ages (s after submission) worth a poll beyond the first, from the kind's history."""
        history = self._history.get(kind)
        if not history:
            return []
        running = max(b.running for b in history)
        done = min(b.done for b in history)
        middle = (running + done) / 2 if running < done else done
        found = [t for t in (middle, done) if t > self.cfg.poll_min]
        return sorted(set(found))

    def first(self, kind: str) -> float:
        """The delay before a newly submitted step's first poll."""
        if kind == "monitor":
            return self.cfg.monitor_interval
        return self.cfg.poll_min

    def next(
        self, kind: str, age: float | None, interval: float, moved: bool
    ) -> tuple[float, float]:
        """``(delay, interval)``: how long until the next poll of a step that was ``age``
        seconds old (None: unknown) at a poll that found it still running, and the backoff
        interval to store.

        ``interval`` is the step's current backoff interval; ``moved``: the poll saw progress.
        """
        if kind == "monitor":
            return self.cfg.monitor_interval, self.cfg.monitor_interval
        cfg = self.cfg
        targets = self.targets(kind) if age is not None else []
        ahead = [t - age for t in targets if age is not None and t > age + 1e-3]
        if moved:
            return min([cfg.poll_min, *ahead]), cfg.poll_min
        if ahead:
            return min(ahead[0], cfg.poll_max), cfg.poll_min
        if age is not None and age < 2 * self.longest(kind):
            late = min(cfg.poll_max, max(cfg.poll_min, age / 10))
            return late, late
        grown = min(cfg.poll_max, max(cfg.poll_min, interval * cfg.poll_growth))
        return self.spread(grown), grown

    def longest(self, kind: str) -> float:
        """The longest recent duration of the kind's steps (s; 0 without history)."""
        history = self._history.get(kind)
        return max((b.done for b in history), default=0.0) if history else 0.0

    def learn(self, kind: str, running: float, done: float) -> None:
        """Record a step seen running at age ``running`` (0: never) and done at ``done``."""
        if kind == "monitor" or done <= 0:
            return
        history = self._history.setdefault(kind, deque(maxlen=_HISTORY))
        history.append(Bracket(min(running, done), done))
