"""Asking every broker at once, each with a deadline, and changing many offers at once.

Invariants:

- :func:`fan_out` returns no later than ``deadline`` after it starts, whatever the brokers do;
  a broker that has not answered by then is ``timeout``, and its call goes on (up to
  ``late_grace``) as a task in :attr:`FanOut.late`, so that a late answer's offers can still
  be rejected at once (the caller owns those tasks).
- Every broker gets the same request body and the caller's identity headers. The calls start
  in the order of ``ask_order`` (each as soon as the one before it has sent its request); the
  answers come back in the order of ``sites``.
- Whatever can be worked out from one answer alone (its offers read, each scored by
  ``score``) is worked out as it arrives, while other brokers are still answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from worksteps.execution.brokers import BrokerError, BrokerRefused, ask_offers, update_phase
from worksteps.execution.offers import Offer, read_offer
from worksteps.execution.ranking import ScoredOffer
from worksteps.execution.registry import Site

__all__ = [
    "AnswerStatus",
    "BrokerAnswer",
    "FanOut",
    "PhaseOutcome",
    "fan_out",
    "set_phase",
    "set_phases",
]

AnswerStatus = Literal["offers", "no", "timeout", "error", "skipped", "late"]


@dataclass
class BrokerAnswer:
    """What one broker answered (or did not) to one execution request."""

    site: str
    url: str
    status: AnswerStatus
    elapsed: float | None = None
    scored: list[ScoredOffer] = field(default_factory=list)  # its offers, each scored
    messages: list[str] = field(default_factory=list)
    error: str | None = None
    offerset: str | None = None

    @property
    def offers(self) -> list[Offer]:
        return [item.offer for item in self.scored]


async def _ask(
    posts: aiohttp.ClientSession,
    site: Site,
    body: bytes,
    headers: dict[str, str],
    started: float,
    within: float,
    limit: int,
    score: Callable[[Offer], ScoredOffer],
) -> BrokerAnswer:
    try:
        offerset = await ask_offers(posts, site.url, body, headers, within=within, limit=limit)
    except BrokerError as exc:
        elapsed = round(time.monotonic() - started, 4)
        return BrokerAnswer(site.name, site.url, "error", elapsed, error=exc.detail)
    elapsed = round(time.monotonic() - started, 4)
    meta = offerset.meta
    messages = [m.message or m.template or "" for m in (meta.messages if meta else None) or []]
    offers = [
        offer
        for doc in offerset.offers or []
        if (offer := read_offer(site.name, site.url, doc)) is not None
    ]
    scored = [score(offer) for offer in offers]
    for offer in offers:
        offer.as_dict()  # now, while other brokers are still answering, not after the last
    status: AnswerStatus = "offers" if offerset.result == "YES" and offers else "no"
    return BrokerAnswer(
        site.name,
        site.url,
        status,
        elapsed,
        scored=scored,
        messages=[m for m in messages if m],
        offerset=meta.url if meta else None,
    )


@dataclass
class FanOut:
    """The answers in site order, and the calls still running at the deadline."""

    answers: list[BrokerAnswer]
    late: dict[str, asyncio.Task[BrokerAnswer]]


async def fan_out(
    posts: aiohttp.ClientSession,
    sites: Sequence[Site],
    skipped: dict[str, str],
    body: bytes,
    headers: dict[str, str],
    *,
    deadline: float,
    late_grace: float,
    limit: int,
    score: Callable[[Offer], ScoredOffer],
    ask_order: Sequence[Site] | None = None,
) -> FanOut:
    """POST ``body`` to every site's broker (except ``skipped``: name -> why) concurrently."""
    started = time.monotonic()
    tasks: dict[str, asyncio.Task[BrokerAnswer]] = {}
    for site in sites if ask_order is None else ask_order:
        if site.name in skipped:
            continue
        call = _ask(posts, site, body, headers, started, late_grace, limit, score)
        tasks[site.name] = asyncio.create_task(call, name=f"ask-{site.name}")
        # Two turns of the loop let the call send its request (aiohttp writes it from a task
        # of its own) before the next call starts, so the broker asked first has its request
        # first. Otherwise every request leaves only after all the calls are set up: 10-25 ms
        # at 50 brokers. A call still connecting is not waited for.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    if tasks:
        await asyncio.wait(tasks.values(), timeout=deadline)
    answers: list[BrokerAnswer] = []
    late: dict[str, asyncio.Task[BrokerAnswer]] = {}
    for site in sites:
        if site.name in skipped:
            answers.append(BrokerAnswer(site.name, site.url, "skipped", error=skipped[site.name]))
            continue
        task = tasks[site.name]
        if task.done():
            answers.append(task.result())
        else:
            late[site.name] = task
            message = f"no answer within the deadline of {deadline:g} s"
            answers.append(BrokerAnswer(site.name, site.url, "timeout", deadline, error=message))
    return FanOut(answers, late)


@dataclass(frozen=True)
class PhaseOutcome:
    """The result of asking one broker to move one offer or session to a phase."""

    site: str
    uuid: str
    ok: bool
    document: dict[str, Any] | None = None
    error: str | None = None
    status: int | None = None  # the broker's HTTP status when it refused


async def set_phase(
    posts: aiohttp.ClientSession,
    site: str,
    broker: str,
    uuid: str,
    phase: str,
    headers: dict[str, str],
    *,
    within: float,
    limit: int,
) -> PhaseOutcome:
    try:
        doc = await update_phase(posts, broker, uuid, phase, headers, within=within, limit=limit)
    except BrokerRefused as exc:
        return PhaseOutcome(site, uuid, False, error=exc.detail, status=exc.status)
    except BrokerError as exc:
        return PhaseOutcome(site, uuid, False, error=exc.detail)
    return PhaseOutcome(site, uuid, True, document=doc)


async def set_phases(
    posts: aiohttp.ClientSession,
    targets: Sequence[tuple[str, str, str]],
    phase: str,
    headers: dict[str, str],
    *,
    within: float,
    limit: int,
) -> list[PhaseOutcome]:
    """Move every ``(site, broker URL, uuid)`` to ``phase`` concurrently; one outcome each."""
    return list(
        await asyncio.gather(
            *(
                set_phase(posts, site, url, uuid, phase, headers, within=within, limit=limit)
                for site, url, uuid in targets
            )
        )
    )
