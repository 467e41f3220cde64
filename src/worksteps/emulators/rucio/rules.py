"""Replication rules and replica locks, whose state is a pure function of time.

A lock records when its replica will be complete at its RSE (``done_at``) and whether the
transfer fails then (``error``). Nothing ticks in the background: every state, counter and
timestamp is computed from these facts and the current time, so an emulator restarted from its
state file, or a client that went away for an hour, sees exactly what it would have seen.

    lock state at t:   t < done_at → REPLICATING;  else error → STUCK;  else OK
    rule state at t:   any STUCK → STUCK;  else any REPLICATING → REPLICATING;  else OK
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Lock", "RucioError", "Rule"]


class RucioError(Exception):
    """An error answered the way Rucio does: its exception class name, a message, a status."""

    def __init__(self, exception_class: str, message: str, status: int) -> None:
        super().__init__(f"{exception_class}: {message}")
        self.exception_class = exception_class
        self.message = message
        self.status = status


@dataclass
class Lock:
    """One file replica that a rule holds (or is creating) at one RSE."""

    scope: str
    name: str
    rse: str
    bytes: int
    done_at: float
    source: str | None = None
    error: str | None = None

    def state(self, now: float) -> str:
        if now < self.done_at:
            return "REPLICATING"
        return "STUCK" if self.error else "OK"


@dataclass
class Rule:
    """A replication rule on one DID, with the locks it created at ``created_at``."""

    id: str
    account: str
    scope: str
    name: str
    did_type: str
    rse_expression: str
    copies: int
    created_at: float
    locks: list[Lock]
    expires_at: float | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def counters(self, now: float) -> tuple[int, int, int]:
        """``(locks_ok_cnt, locks_replicating_cnt, locks_stuck_cnt)`` at ``now``."""
        states = [lock.state(now) for lock in self.locks]
        return states.count("OK"), states.count("REPLICATING"), states.count("STUCK")

    def state(self, now: float) -> str:
        _, replicating, stuck = self.counters(now)
        if stuck:
            return "STUCK"
        return "REPLICATING" if replicating else "OK"

    def error(self, now: float) -> str | None:
        failed = [lock for lock in self.locks if lock.state(now) == "STUCK"]
        return failed[0].error if failed else None

    def stuck_at(self, now: float) -> float | None:
        times = [lock.done_at for lock in self.locks if lock.state(now) == "STUCK"]
        return min(times) if times else None

    def updated_at(self, now: float) -> float:
        """The time of the last lock change that has happened by ``now``."""
        past = [lock.done_at for lock in self.locks if lock.done_at <= now]
        return max([self.created_at, *past])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rule:
        locks = [Lock(**lock) for lock in data.pop("locks")]
        return cls(locks=locks, **data)
