"""How often one user may ask the federation for offers: a token bucket per user.

Every offer request makes each site's broker plan and hold capacity for five minutes, so one
user (or one runaway script) asking in a loop would hold the federation. Each user has a
bucket of ``burst`` tokens refilled at ``rate`` per second; an offer request takes one, and an
empty bucket answers :class:`~worksteps.core.errors.TooManyRequests` (429) whose
``Retry-After`` is the whole seconds until a token is back.

Invariants:

- Buckets are per subject and per process (each execution service replica counts for
  itself, so N replicas allow N times the rate); admins are limited like anyone else.
- A refused request takes nothing, so a client that waits ``Retry-After`` always gets in.
- Buckets that have refilled completely are forgotten (they equal a new one), so memory is
  bounded by the users active within ``burst / rate`` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from worksteps.core.errors import TooManyRequests
from worksteps.execution.settings import RateLimitSettings

__all__ = ["OfferRateLimit"]


@dataclass
class _Bucket:
    tokens: float
    at: float


class OfferRateLimit:
    """The buckets of every user of one execution service; safe within one event loop."""

    def __init__(
        self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._swept = clock()

    def take(self, subject: str) -> None:
        """Take one token of ``subject``'s bucket, or raise :class:`TooManyRequests`."""
        now = self._clock()
        self._sweep(now)
        bucket = self._buckets.get(subject)
        tokens = self._level(bucket, now)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) / self.settings.rate)
            raise TooManyRequests(
                f"Too many offer requests: at most {self.settings.burst} at once and "
                f"{self.settings.rate:g} per second after that. Try again in {wait} s.",
                retry_after=wait,
            )
        self._buckets[subject] = _Bucket(tokens - 1.0, now)

    def _level(self, bucket: _Bucket | None, now: float) -> float:
        if bucket is None:
            return float(self.settings.burst)
        refilled = bucket.tokens + (now - bucket.at) * self.settings.rate
        return min(float(self.settings.burst), refilled)

    def _sweep(self, now: float) -> None:
        """Forget the full buckets, at most once per refill time."""
        full_after = self.settings.burst / self.settings.rate
        if now - self._swept < full_after:
            return
        self._swept = now
        self._buckets = {
            subject: bucket
            for subject, bucket in self._buckets.items()
            if self._level(bucket, now) < self.settings.burst
        }

    def __len__(self) -> int:
        return len(self._buckets)
