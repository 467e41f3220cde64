"""A claimed step as the worker holds it while following it: its row, plus what the worker
has learnt since (polls made, progress seen, when its submission returned)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worksteps.broker.engine.drivers import Outcome

__all__ = ["Step", "StepGone", "progress_event"]


class StepGone(Exception):
    """The step was closed (cancelled, failed) by someone else while a worker held it."""


@dataclass
class Step:
    id: str
    session: str
    key: str
    kind: str
    state: str
    params: dict[str, Any]
    after: list[str] = field(default_factory=list)
    ref: str | None = None
    failures: int = 0
    polls: int = 0
    interval: float = 0.0
    started: datetime | None = None
    progressed: datetime | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    message: str = ""
    fresh: bool = False
    """Claimed before any submission could have happened (no look-up needed)."""
    submitted: float | None = None
    """``time.monotonic()`` when this worker's submission returned (None: earlier)."""
    inputs: dict[str, dict[str, Any]] | None = None
    """The results of the steps in ``after``, when already known (None: to be read)."""

    @classmethod
    def from_row(
        cls,
        row: Any,
        *,
        fresh: bool = False,
        inputs: dict[str, dict[str, Any]] | None = None,
    ) -> Step:
        return cls(
            id=row.id,
            session=row.session,
            key=row.key,
            kind=row.kind,
            state=row.state,
            params=dict(row.params or {}),
            after=list(row.after or []),
            ref=row.ref,
            failures=row.failures,
            polls=row.polls,
            interval=row.interval,
            started=row.started,
            progressed=row.progressed,
            bytes_done=row.bytes_done,
            bytes_total=row.bytes_total,
            message=row.message or "",
            fresh=fresh,
            inputs=inputs,
        )

    def moved(self, outcome: Outcome) -> bool:
        """Whether ``outcome`` reports progress beyond what the step last recorded."""
        return (outcome.bytes_done, outcome.bytes_total) != (self.bytes_done, self.bytes_total)


def progress_event(step: Step, outcome: Outcome) -> dict[str, Any]:
    body: dict[str, Any] = {
        "step": step.key,
        "kind": step.kind,
        "state": "DONE" if outcome.done else "RUNNING",
    }
    if outcome.bytes_total:
        body.update(
            bytes_done=outcome.bytes_done or 0,
            bytes_total=outcome.bytes_total,
            percent=round(100.0 * (outcome.bytes_done or 0) / outcome.bytes_total, 1),
        )
    if outcome.message:
        body["message"] = outcome.message
    return body
