"""Choosing: one offer ACCEPTED at its broker and every other REJECTED at every broker;
withdrawing an execution (every offer REJECTED) or cancelling its session (CANCELLED).

The chosen offer is accepted before any other is rejected, so a refused accept leaves the
user every other offer to choose from. An expired offer is refused here, before any broker is
asked. A REJECT the broker refuses because the offer is already final there (expired, or
rejected by the broker itself when a sibling was accepted) is recorded with that phase.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx

from worksteps.core.clock import utcnow
from worksteps.core.errors import Conflict, NotFound, Unavailable
from worksteps.execution.brokers import BrokerError
from worksteps.execution.fanout import PhaseOutcome, set_phase, set_phases
from worksteps.execution.relay import FINAL_PHASES, session_status
from worksteps.execution.settings import ExecutionSettings
from worksteps.execution.store import ExecutionRecord, OfferRecord, Store
from worksteps.execution.tracking import SessionTracker

__all__ = ["OfferChoice"]

_BUSY = {
    "selecting": ("selection-in-progress", "another selection of this execution is under way"),
    "selected": ("already-selected", "an offer of this execution has already been selected"),
    "ended": ("already-selected", "this execution's session has already ended"),
    "cancelled": ("execution-cancelled", "this execution was withdrawn"),
    "no-offers": ("no-offers", "no broker made an offer for this execution"),
}


def busy(record: ExecutionRecord) -> Conflict:
    """Why ``record`` cannot be chosen from or cancelled in its state."""
    reason, text = _BUSY.get(record.state, ("conflict", f"the execution is {record.state}"))
    return Conflict(f"Execution {record.id}: {text}.", reason=reason)


class OfferChoice:
    def __init__(
        self,
        settings: ExecutionSettings,
        store: Store,
        client: httpx.AsyncClient,
        posts: aiohttp.ClientSession,
        tracker: SessionTracker,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.posts = posts  # for the phase changes
        self.tracker = tracker

    async def _set_phase(
        self, site: str, broker: str, uuid: str, phase: str, headers: dict[str, str]
    ) -> PhaseOutcome:
        return await set_phase(
            self.posts,
            site,
            broker,
            uuid,
            phase,
            headers,
            within=self.settings.call_timeout,
            limit=self.settings.max_answer_bytes,
        )

    async def _reject(
        self, record: ExecutionRecord, offers: list[OfferRecord], headers: dict[str, str]
    ) -> None:
        """REJECT ``offers`` at their brokers concurrently and record what became of each."""
        urls = {b.site: b.url for b in record.brokers}
        outcomes = await set_phases(
            self.posts,
            [(o.site, urls[o.site], o.uuid) for o in offers],
            "REJECTED",
            headers,
            within=self.settings.call_timeout,
            limit=self.settings.max_answer_bytes,
        )
        states = await asyncio.gather(
            *(self._rejected_state(urls[o.site], o, headers) for o in outcomes)
        )
        await self.store.set_offers(record.id, states)

    async def _rejected_state(
        self, url: str, outcome: PhaseOutcome, headers: dict[str, str]
    ) -> tuple[str, str, str | None]:
        if outcome.ok:
            return outcome.uuid, "rejected", None
        if outcome.status == 409:  # already final there (expired, or rejected by the broker)
            try:
                doc = await session_status(self.client, self.settings, url, outcome.uuid, headers)
            except BrokerError:
                doc = {}
            phase = str(doc.get("phase", ""))
            if phase in FINAL_PHASES:
                return outcome.uuid, phase.lower(), None
        return outcome.uuid, "unrejected", outcome.error

    async def select(self, record: ExecutionRecord, offer: str, headers: dict[str, str]) -> str:
        """ACCEPT ``offer``, then REJECT every other offer; the chosen broker's URL."""
        execution = record.id
        if record.state != "offered":
            raise busy(record)
        chosen = record.offer(offer)
        if chosen is None:
            raise NotFound(f"Execution {execution} has no offer {offer}.", reason="offer-not-found")
        now = utcnow()
        if chosen.state != "offered":
            raise Conflict(f"Offer {offer} is {chosen.state}.", reason="offer-not-open")
        if chosen.expires is not None and chosen.expires <= now:
            raise Conflict(
                f"Offer {offer} of {chosen.site} expired at {chosen.summary.get('expires')}; "
                "execute again for new offers.",
                reason="offer-expired",
            )
        if not await self.store.move(execution, ["offered"], "selecting", now, selected=offer):
            raise busy(await self.store.get(execution) or record)
        broker = next(b.url for b in record.brokers if b.site == chosen.site)
        accepted = await self._set_phase(chosen.site, broker, offer, "ACCEPTED", headers)
        if not accepted.ok or accepted.document is None:
            await self.store.move(execution, ["selecting"], "offered", utcnow(), selected=None)
            if accepted.status is not None and accepted.status < 500:
                await self.store.set_offers(execution, [(offer, "refused", accepted.error)])
                raise Conflict(
                    f"{chosen.site} refused to accept offer {offer}: {accepted.error}",
                    reason="offer-refused",
                )
            raise Unavailable(
                f"{chosen.site} could not be asked to accept offer {offer}: {accepted.error}",
                reason="broker-unavailable",
            )
        await self._accepted(record, chosen, broker, accepted.document, headers)
        return broker

    async def _accepted(
        self,
        record: ExecutionRecord,
        chosen: OfferRecord,
        broker: str,
        doc: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        """The chosen offer is ACCEPTED at its broker: keep that, reject every other."""
        await self.store.move(
            record.id,
            ["selecting"],
            "selected",
            utcnow(),
            site=chosen.site,
            broker=broker,
            session_url=chosen.summary.get("session"),
            phase=str(doc["phase"]),
            session=doc,
            accepted_at=utcnow(),
        )
        await self.store.set_offers(record.id, [(chosen.uuid, "accepted", None)])
        others = [o for o in record.offers if o.uuid != chosen.uuid and o.state == "offered"]
        await self._reject(record, others, headers)

    async def reconcile(self, record: ExecutionRecord, headers: dict[str, str]) -> str | None:
        """A selection cut short (the service stopped between ACCEPT and recording it): ask
        the broker what became of the offer and finish or undo the selection. The broker URL
        when the offer was accepted; None otherwise (or when the broker cannot be asked).
        ``headers``: the service's own credentials (no user is there)."""
        chosen = record.offer(record.selected) if record.selected else None
        if chosen is None:
            await self.store.move(record.id, ["selecting"], "offered", utcnow(), selected=None)
            return None
        broker = next(b.url for b in record.brokers if b.site == chosen.site)
        try:
            doc = await session_status(self.client, self.settings, broker, chosen.uuid, headers)
        except BrokerError:
            return None
        if doc["phase"] in ("OFFERED", "REJECTED", "EXPIRED"):
            await self.store.move(record.id, ["selecting"], "offered", utcnow(), selected=None)
            return None
        await self._accepted(record, chosen, broker, doc, headers)
        return broker

    async def cancel(self, record: ExecutionRecord, headers: dict[str, str]) -> None:
        """Withdraw the execution (every offer rejected) or cancel its session (CANCELLED)."""
        execution = record.id
        if record.state == "offered":
            if not await self.store.move(execution, ["offered"], "cancelled", utcnow()):
                raise busy(await self.store.get(execution) or record)
            await self._reject(record, [o for o in record.offers if o.state == "offered"], headers)
            return
        if record.state != "selected" or record.broker is None or record.selected is None:
            raise busy(record)
        outcome = await self._set_phase(
            record.site or "", record.broker, record.selected, "CANCELLED", headers
        )
        if outcome.ok and outcome.document is not None:
            await self.tracker.observe(execution, outcome.document)
            return
        if outcome.status == 409:
            raise Conflict(
                f"The session of execution {execution} cannot be cancelled: {outcome.error}",
                reason="session-final",
            )
        raise Unavailable(
            f"{record.site} could not be asked to cancel the session: {outcome.error}",
            reason="broker-unavailable",
        )
