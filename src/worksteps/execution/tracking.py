"""Following chosen sessions at their brokers, and recording how they end.

Every phase the service learns of (a status read, a long-poll, a relayed event, its own
follower) goes through :meth:`SessionTracker.observe`; the one observation that moves an
execution to ``ended`` writes its W3C PROV-JSON record (:func:`build_provenance`), so the
record is written exactly once. A follower long-polls each chosen session until it is final,
so its end is recorded even when nobody is looking; it is resumed at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import ValidationError
from sse_starlette import ServerSentEvent

from worksteps.core.clock import utcnow
from worksteps.core.errors import Unavailable
from worksteps.core.service_token import ServiceToken
from worksteps.execution.brokers import BrokerError, BrokerRefused
from worksteps.execution.relay import FINAL_PHASES, relay_events, session_status
from worksteps.execution.settings import ExecutionSettings
from worksteps.execution.store import Store
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.provenance import WorkstepRef, build_provenance

__all__ = ["SessionTracker"]

log = logging.getLogger(__name__)


class SessionTracker:
    def __init__(
        self,
        settings: ExecutionSettings,
        store: Store,
        client: httpx.AsyncClient,
        service: ServiceToken | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.service = service

    async def headers(self, user: dict[str, str]) -> dict[str, str]:
        """Credentials for following: the service's own token when it has a client at the
        issuer (a user's token expires, and is gone after a restart), else ``user``'s."""
        if self.service is None:
            return user
        try:
            return await self.service.headers()
        except Unavailable:
            log.warning("no service token; following with the user's credentials")
            return user

    async def observe(self, execution: str, doc: dict[str, Any]) -> None:
        """Keep a session document read from the broker; record the end when it is final."""
        phase = str(doc["phase"])
        if await self.store.observe(execution, phase, doc, utcnow(), phase in FINAL_PHASES):
            await self.write_provenance(execution)

    async def observe_phase(
        self, execution: str, phase: str, broker: str, session: str, headers: dict[str, str]
    ) -> None:
        """Keep a phase learnt from an event; at a final phase, read the whole document."""
        if phase in FINAL_PHASES:
            try:
                doc = await session_status(self.client, self.settings, broker, session, headers)
            except BrokerError:
                doc = None
            if doc is not None:
                await self.observe(execution, doc | {"phase": phase})
                return
        if await self.store.observe(execution, phase, None, utcnow(), phase in FINAL_PHASES):
            await self.write_provenance(execution)

    async def write_provenance(self, execution: str) -> None:
        """Write the ended execution's PROV-JSON record, unless it has one."""
        record = await self.store.get(execution)
        if record is None or record.provenance is not None or record.state != "ended":
            return
        chosen = record.offer(record.selected) if record.selected else None
        try:
            workstep = None
            if record.workstep and "uuid" in record.workstep:
                reference = {k: v for k, v in record.workstep.items() if k != "url"}
                workstep = WorkstepRef.model_validate(reference)
            document = build_provenance(
                session=record.session_url or f"{record.broker}/sessions/{record.selected}",
                request=ExecutionRequest.model_validate(record.request),
                site=record.site or "",
                broker=record.broker or "",
                phase=record.phase or "",
                started=record.accepted_at,
                ended=record.ended_at,
                workstep=workstep,
                offer=chosen.summary if chosen else None,
                owner=record.owner,
            )
        except (ValueError, ValidationError):
            log.exception("cannot build the provenance record of execution %s", execution)
            return
        await self.store.set_provenance(execution, document)

    async def follow(
        self, execution: str, broker: str, session: str, headers: dict[str, str]
    ) -> None:
        """Long-poll the session until it is final; broker errors back off up to 30 s."""
        delay = 0.5
        while True:
            try:
                doc = await session_status(
                    self.client,
                    self.settings,
                    broker,
                    session,
                    await self.headers(headers),
                    self.settings.follow_wait,
                )
            except BrokerRefused as exc:
                if exc.status == 404:
                    log.warning("session %s is gone at %s; no longer followed", session, broker)
                    return
                if exc.status == 401 and self.service is None:
                    log.warning(
                        "session %s at %s: no credentials to follow it with (configure the "
                        "service's client at the issuer); no longer followed",
                        session,
                        broker,
                    )
                    return
                doc = None
            except BrokerError:
                doc = None
            if doc is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            await self.observe(execution, doc)
            if doc["phase"] in FINAL_PHASES:
                return

    def relay(
        self,
        execution: str,
        broker: str,
        session: str,
        headers: dict[str, str],
        after: int | None,
    ) -> AsyncIterator[ServerSentEvent]:
        """The broker's events of the session, relayed, each phase observed on the way."""

        async def on_phase(phase: str) -> None:
            await self.observe_phase(execution, phase, broker, session, headers)

        return relay_events(
            self.client, self.settings, broker, session, headers, after=after, on_phase=on_phase
        )
