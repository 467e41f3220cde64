"""The execution service: execute (fan out, rank), select, cancel, follow, provenance.

Invariants:

- A caller sees only their own executions (an admin sees all); anyone else's is 404.
- The caller's bearer token goes with every broker call made on their behalf.
- An offer never leaks a hold through this service: a broker answering after the deadline has
  its offers rejected at once; selecting one offer rejects every other offer of the execution
  at every broker; withdrawing an execution rejects them all.
- The chosen offer is ACCEPTED before any other is rejected, so a refused accept leaves the
  user every other offer to choose from.
- An execution's state moves only by compare-and-set (:mod:`.store`); when its session reaches
  a final phase its PROV-JSON record is written exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid as uuidlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import httpx
from sse_starlette import ServerSentEvent

from worksteps.core.auth import Principal
from worksteps.core.clock import utcnow
from worksteps.core.database import Database
from worksteps.core.errors import Conflict, NotFound, Unavailable
from worksteps.core.service_token import ServiceToken
from worksteps.execution.broadcast import Broadcasts
from worksteps.execution.brokers import BrokerError, broker_client, broker_posts
from worksteps.execution.fanout import BrokerAnswer, fan_out, set_phases
from worksteps.execution.intake import take_in
from worksteps.execution.ranking import rank_scored, scorer
from worksteps.execution.ratelimit import OfferRateLimit
from worksteps.execution.registry import Registry
from worksteps.execution.relay import session_status
from worksteps.execution.selection import OfferChoice
from worksteps.execution.settings import ExecutionSettings
from worksteps.execution.store import BrokerRecord, ExecutionRecord, OfferRecord, Store
from worksteps.execution.tracking import SessionTracker

__all__ = ["ExecutionService"]

log = logging.getLogger(__name__)


class ExecutionService:
    """Operations of the Global Execution API; :meth:`start` before use, :meth:`aclose` after."""

    def __init__(self, settings: ExecutionSettings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.rate_limit = OfferRateLimit(settings.rate_limit)
        self.broadcasts = Broadcasts()
        self._db: Database | None = None
        self._store: Store | None = None
        self._client: httpx.AsyncClient | None = None
        self._posts: aiohttp.ClientSession | None = None
        self._tracker: SessionTracker | None = None
        self._choice: OfferChoice | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def store(self) -> Store:
        assert self._store is not None, "the service is not started"
        return self._store

    @property
    def tracker(self) -> SessionTracker:
        assert self._tracker is not None, "the service is not started"
        return self._tracker

    @property
    def choice(self) -> OfferChoice:
        assert self._choice is not None, "the service is not started"
        return self._choice

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "the service is not started"
        return self._client

    @property
    def posts(self) -> aiohttp.ClientSession:
        """The client of the calls to many brokers at once (offers, phase changes)."""
        assert self._posts is not None, "the service is not started"
        return self._posts

    async def start(self) -> None:
        """Migrate; finish what a stop cut short (selections, sessions to follow, records to
        write); then check health periodically."""
        self._db = Database(self.settings.database_url)
        self._store = Store(self._db)
        await self._store.migrate()
        self._client = broker_client(
            [site.url for site in self.registry.sites.values()],
            httpx.Limits(max_connections=500, max_keepalive_connections=50),
        )
        self._posts = broker_posts(per_broker=50)
        own = self.settings.service_client
        service = ServiceToken(own, self._client) if own else None
        self._tracker = SessionTracker(self.settings, self._store, self._client, service)
        self._choice = OfferChoice(
            self.settings, self._store, self._client, self._posts, self._tracker
        )
        for record in await self.store.unfinished():
            if record.state == "ended":
                await self.tracker.write_provenance(record.id)
            elif record.state == "selecting" and record.selected:
                full = await self.store.get(record.id)
                headers = await self.tracker.headers({})
                if full is not None and (broker := await self.choice.reconcile(full, headers)):
                    self._follow(record.id, broker, record.selected, {})
            elif record.broker and record.selected:
                self._follow(record.id, record.broker, record.selected, {})
        if self.settings.health_interval > 0 and len(self.registry):
            self._spawn(self._health_loop(), "health")

    async def aclose(self) -> None:
        await self.broadcasts.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        if self._posts is not None:
            await self._posts.close()
        if self._db is not None:
            await self._db.dispose()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` in the background until it ends or the service stops."""

        async def logged() -> None:
            try:
                await work
            except Exception:
                log.exception("background task %s failed", name)

        task = asyncio.create_task(logged(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _follow(self, execution: str, broker: str, session: str, headers: dict[str, str]) -> None:
        self._spawn(self.tracker.follow(execution, broker, session, headers), f"follow-{session}")

    async def _health_loop(self) -> None:
        while True:
            await self.registry.check(self.client, self.settings.health_timeout)
            await asyncio.sleep(self.settings.health_interval)

    async def sites(self, principal: Principal, check: bool = False) -> list[dict[str, Any]]:
        if check:
            await self.registry.check(self.client, self.settings.health_timeout)
        return self.registry.describe()

    # --- execute ---------------------------------------------------------------------------

    async def execute(self, principal: Principal, body: Any) -> ExecutionRecord:
        """Validate, ask every broker at once, rank the offers, keep it all (429 when the
        caller has asked too often: :mod:`.ratelimit`)."""
        self.rate_limit.take(principal.subject)
        intake = await take_in(body, self.settings, self.client, principal)
        sites = self.registry.choose(intake.sites)
        if not sites:
            raise Unavailable("No brokers are registered.", reason="no-brokers")
        skipped = {s.name: why for s in sites if (why := s.refusal(intake.request))}
        body_bytes = json.dumps(intake.document).encode()
        headers = principal.authorization
        asked = utcnow()  # offers are ranked by how soon they are ready from now
        fan = await fan_out(
            self.posts,
            sites,
            skipped,
            body_bytes,
            headers,
            deadline=intake.deadline,
            late_grace=self.settings.late_grace,
            limit=self.settings.max_answer_bytes,
            score=scorer(self.settings.ranking, asked),
            ask_order=self.registry.longest_first(sites),
        )
        for answer in fan.answers:
            if answer.status in ("offers", "no"):
                self.registry.note(answer.site, "up")
            if answer.elapsed is not None and answer.status != "skipped":
                self.registry.note_answer_time(answer.site, answer.elapsed)
        now = utcnow()
        ranked = rank_scored([s for answer in fan.answers for s in answer.scored])
        record = ExecutionRecord(
            id=str(uuidlib.uuid4()),
            owner=principal.subject,
            state="offered" if ranked else "no-offers",
            created=now,
            modified=now,
            deadline=intake.deadline,
            request=intake.document,
            workstep=intake.workstep,
            brokers=[
                BrokerRecord(a.site, a.url, a.status, a.elapsed, a.messages, a.error, a.offerset)
                for a in fan.answers
            ],
            offers=[
                OfferRecord(
                    r.offer.uuid, r.offer.site, r.rank, "offered", r.offer.expires, r.as_dict()
                )
                for r in ranked
            ],
        )
        try:
            await self.store.create(record)
        except Exception:
            # not kept, so never selectable: give every hold back before failing
            held = [(a.site, a.url, o.uuid) for a in fan.answers for o in a.offers]
            self._spawn(self._release(held, headers), "release")
            for site, task in fan.late.items():
                self._spawn(self._late(None, site, task, headers), f"late-{site}")
            raise
        for site, task in fan.late.items():
            self._spawn(self._late(record.id, site, task, headers), f"late-{site}")
        return record

    async def _release(self, held: list[tuple[str, str, str]], headers: dict[str, str]) -> None:
        await set_phases(
            self.posts,
            held,
            "REJECTED",
            headers,
            within=self.settings.call_timeout,
            limit=self.settings.max_answer_bytes,
        )

    async def _late(
        self,
        execution: str | None,
        site: str,
        task: asyncio.Task[BrokerAnswer],
        headers: dict[str, str],
    ) -> None:
        """A broker that missed the deadline: reject whatever it offers as soon as it does."""
        answer = await task
        outcomes = await set_phases(
            self.posts,
            [(site, answer.url, o.uuid) for o in answer.offers],
            "REJECTED",
            headers,
            within=self.settings.call_timeout,
            limit=self.settings.max_answer_bytes,
        )
        late = {
            "status": answer.status,
            "elapsed": answer.elapsed,
            "offers": [o.uuid for o in answer.offers],
            "rejected": [o.uuid for o in outcomes if o.ok],
            "failed": [{"offer": o.uuid, "error": o.error} for o in outcomes if not o.ok],
            "messages": answer.messages,
            "error": answer.error,
        }
        if execution is not None:
            await self.store.record_late(execution, site, late, utcnow())

    # --- reading ---------------------------------------------------------------------------

    async def _own(
        self, principal: Principal, execution: str, *, whole: bool = True
    ) -> ExecutionRecord:
        """The caller's execution, or 404; without its answers and offers unless ``whole``."""
        record = await (self.store.get if whole else self.store.head)(execution)
        if record is None or not principal.may_see(record.owner):
            raise NotFound(f"No execution {execution}.", reason="execution-not-found")
        return record

    async def executions(self, principal: Principal, limit: int = 100) -> list[ExecutionRecord]:
        return await self.store.owned(None if principal.admin else principal.subject, limit)

    async def get(
        self, principal: Principal, execution: str, wait: float | None = None
    ) -> tuple[ExecutionRecord, str | None]:
        """The execution, its session brought up to date from the broker (long-polled with
        ``wait``); the error text when the broker could not be asked."""
        record = await self._own(principal, execution)
        if record.state != "selected" or record.broker is None or record.selected is None:
            return record, None
        try:
            doc = await session_status(
                self.client,
                self.settings,
                record.broker,
                record.selected,
                principal.authorization,
                wait,
            )
        except BrokerError as exc:
            return record, exc.detail
        await self.tracker.observe(record.id, doc)
        return await self._own(principal, execution), None

    async def provenance(self, principal: Principal, execution: str) -> dict[str, Any]:
        record = await self._own(principal, execution)
        if record.provenance is None and record.state == "ended":
            await self.tracker.write_provenance(execution)
            record = await self._own(principal, execution)
        if record.provenance is None:
            raise NotFound(
                f"Execution {execution} has no provenance record yet: its session has not "
                f"ended (state {record.state}, phase {record.phase}).",
                reason="no-provenance-yet",
            )
        return record.provenance

    async def events(
        self, principal: Principal, execution: str, after: int | None
    ) -> AsyncIterator[ServerSentEvent]:
        """The chosen session's events (checked before the stream starts), through the one
        relay every watcher of the execution shares (:mod:`.broadcast`)."""
        record = await self._own(principal, execution, whole=False)
        if record.broker is None or record.selected is None or record.state == "selecting":
            raise Conflict(
                f"Execution {execution} has no session to follow: select an offer first.",
                reason="not-selected",
            )
        broker, session, headers = record.broker, record.selected, principal.authorization

        def relay(start: int | None = None) -> AsyncIterator[ServerSentEvent]:
            return self.tracker.relay(execution, broker, session, headers, start)

        shared = self.broadcasts.follow(execution, relay, after)
        return shared if shared is not None else relay(after)

    # --- select and cancel -----------------------------------------------------------------

    async def select(self, principal: Principal, execution: str, offer: str) -> ExecutionRecord:
        """ACCEPT ``offer`` at its broker, then REJECT every other offer at every broker."""
        record = await self._own(principal, execution)
        broker = await self.choice.select(record, offer, principal.authorization)
        self._follow(execution, broker, offer, principal.authorization)
        return await self._own(principal, execution)

    async def cancel(self, principal: Principal, execution: str) -> ExecutionRecord:
        """Withdraw an execution (every offer rejected) or cancel its session (CANCELLED)."""
        record = await self._own(principal, execution)
        try:
            await self.choice.cancel(record, principal.authorization)
        except Conflict:
            if record.state == "selected":
                await self.get(principal, execution)  # learn the final phase it reached
            raise
        return await self._own(principal, execution)
