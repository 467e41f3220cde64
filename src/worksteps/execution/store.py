"""Reading and writing executions. Every state change is one conditional UPDATE, so two
requests racing on one execution cannot both win (the loser sees ``False``).

Execution states::

    offered ──► selecting ──► selected ──► ended      (the session reached a final phase)
       │  ▲         │
       │  └─────────┘  the chosen broker refused the accept: offered again
       └──► cancelled  (withdrawn before a choice: every offer rejected)
    no-offers          (no broker made an offer)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from worksteps.core.database import Database
from worksteps.core.migrations import upgrade
from worksteps.execution.db.tables import BrokerAnswerRow, ExecutionRow, OfferRow

__all__ = [
    "BrokerRecord",
    "ExecutionRecord",
    "OfferRecord",
    "Store",
]

_SCRIPTS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version_execution"


@dataclass
class BrokerRecord:
    site: str
    url: str
    status: str
    elapsed: float | None
    messages: list[str]
    error: str | None
    offerset: str | None
    late: dict[str, Any] | None = None


@dataclass
class OfferRecord:
    uuid: str
    site: str
    rank: int
    state: str  # offered | accepted | rejected | unrejected (the broker refused the reject)
    expires: datetime | None
    summary: dict[str, Any]
    error: str | None = None


@dataclass
class ExecutionRecord:
    id: str
    owner: str
    state: str
    created: datetime
    modified: datetime
    deadline: float
    request: dict[str, Any]
    workstep: dict[str, Any] | None = None
    selected: str | None = None
    site: str | None = None
    broker: str | None = None
    session_url: str | None = None
    phase: str | None = None
    session: dict[str, Any] | None = None
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    provenance: dict[str, Any] | None = None
    brokers: list[BrokerRecord] = field(default_factory=list)
    offers: list[OfferRecord] = field(default_factory=list)
    offers_until: datetime | None = None
    """When the last offer still open expires (read by :meth:`Store.get` and
    :meth:`Store.owned`; None: no open offer, or not read)."""

    def offer(self, uuid: str) -> OfferRecord | None:
        return next((o for o in self.offers if o.uuid == uuid), None)

    def lapsed(self, now: datetime) -> bool:
        """Offered, and every open offer has expired: nothing is left to select."""
        return (
            self.state == "offered" and self.offers_until is not None and self.offers_until <= now
        )


_EXECUTION_FIELDS = [
    "id",
    "owner",
    "state",
    "created",
    "modified",
    "deadline",
    "request",
    "workstep",
    "selected",
    "site",
    "broker",
    "session_url",
    "phase",
    "session",
    "accepted_at",
    "ended_at",
    "provenance",
]


def _record(row: Any) -> ExecutionRecord:
    return ExecutionRecord(**{name: getattr(row, name) for name in _EXECUTION_FIELDS})


class Store:
    """The executions in one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def migrate(self) -> None:
        await upgrade(self.db, _SCRIPTS, version_table=VERSION_TABLE)

    async def create(self, record: ExecutionRecord) -> None:
        values = {name: getattr(record, name) for name in _EXECUTION_FIELDS}
        async with self.db.write() as conn:
            await conn.execute(insert(ExecutionRow).values(**values))
            if record.brokers:
                await conn.execute(
                    insert(BrokerAnswerRow),
                    [
                        {
                            "execution": record.id,
                            "position": position,
                            "site": b.site,
                            "url": b.url,
                            "status": b.status,
                            "elapsed": b.elapsed,
                            "messages": b.messages,
                            "error": b.error,
                            "offerset": b.offerset,
                            "late": b.late,
                        }
                        for position, b in enumerate(record.brokers)
                    ],
                )
            if record.offers:
                await conn.execute(
                    insert(OfferRow),
                    [
                        {
                            "execution": record.id,
                            "uuid": o.uuid,
                            "site": o.site,
                            "rank": o.rank,
                            "state": o.state,
                            "expires": o.expires,
                            "summary": o.summary,
                            "error": o.error,
                        }
                        for o in record.offers
                    ],
                )

    async def head(self, execution: str) -> ExecutionRecord | None:
        """The execution without its brokers' answers and offers (one query, not three)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(ExecutionRow).where(ExecutionRow.id == execution))
            ).first()
        return None if row is None else _record(row)

    async def get(self, execution: str) -> ExecutionRecord | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(ExecutionRow).where(ExecutionRow.id == execution))
            ).first()
            if row is None:
                return None
            record = _record(row)
            brokers = await conn.execute(
                select(BrokerAnswerRow)
                .where(BrokerAnswerRow.execution == execution)
                .order_by(BrokerAnswerRow.position)
            )
            record.brokers = [
                BrokerRecord(
                    b.site, b.url, b.status, b.elapsed, b.messages, b.error, b.offerset, b.late
                )
                for b in brokers
            ]
            offers = await conn.execute(
                select(OfferRow).where(OfferRow.execution == execution).order_by(OfferRow.rank)
            )
            record.offers = [
                OfferRecord(o.uuid, o.site, o.rank, o.state, o.expires, o.summary, o.error)
                for o in offers
            ]
        open_until = [o.expires for o in record.offers if o.state == "offered" and o.expires]
        record.offers_until = max(open_until, default=None)
        return record

    async def owned(self, owner: str | None, limit: int) -> list[ExecutionRecord]:
        """Newest first; ``owner`` None: everyone's."""
        until = (
            select(func.max(OfferRow.expires))
            .where(OfferRow.execution == ExecutionRow.id, OfferRow.state == "offered")
            .scalar_subquery()
            .label("offers_until")
        )
        query = select(ExecutionRow, until).order_by(ExecutionRow.created.desc()).limit(limit)
        if owner is not None:
            query = query.where(ExecutionRow.owner == owner)
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            return [replace(_record(row), offers_until=row.offers_until) for row in rows]

    async def unfinished(self) -> list[ExecutionRecord]:  # at start-up
        """Executions left unfinished: a selection under way, a session to follow, or an
        ended session without its record."""
        query = select(ExecutionRow).where(
            ExecutionRow.state.in_(["selecting", "selected"])
            | ((ExecutionRow.state == "ended") & ExecutionRow.provenance.is_(None))
        )
        async with self.db.read() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def move(
        self, execution: str, source: Sequence[str], target: str, now: datetime, **values: Any
    ) -> bool:
        """Set ``state`` to ``target`` (and ``values``) only if it is one of ``source``."""
        statement = (
            update(ExecutionRow)
            .where(ExecutionRow.id == execution, ExecutionRow.state.in_(list(source)))
            .values(state=target, modified=now, **values)
        )
        async with self.db.write() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def observe(
        self,
        execution: str,
        phase: str,
        session: dict[str, Any] | None,
        now: datetime,
        final: bool,
    ) -> bool:
        """Keep the session's phase (and latest document, when given); a final phase ends the
        execution. True when this call ended it, so exactly one caller writes its record."""
        values: dict[str, Any] = {"phase": phase, "modified": now}
        if session is not None:
            values["session"] = session
        if final:
            values.update(state="ended", ended_at=now)
        async with self.db.write() as conn:
            result = await conn.execute(
                update(ExecutionRow)
                .where(ExecutionRow.id == execution, ExecutionRow.state == "selected")
                .values(**values)
            )
        return final and bool(result.rowcount)

    async def set_offers(
        self, execution: str, outcomes: Sequence[tuple[str, str, str | None]]
    ) -> None:
        """Record ``(offer uuid, state, error)`` for offers of the execution."""
        if not outcomes:
            return
        async with self.db.write() as conn:
            for uuid, state, error in outcomes:
                await conn.execute(
                    update(OfferRow)
                    .where(OfferRow.execution == execution, OfferRow.uuid == uuid)
                    .values(state=state, error=error)
                )

    async def record_late(
        self, execution: str, site: str, late: dict[str, Any], now: datetime
    ) -> None:
        """A broker answered after the deadline: what it said and what was done about it."""
        async with self.db.write() as conn:
            await conn.execute(
                update(BrokerAnswerRow)
                .where(BrokerAnswerRow.execution == execution, BrokerAnswerRow.site == site)
                .values(status="late", late=late)
            )
            await conn.execute(
                update(ExecutionRow).where(ExecutionRow.id == execution).values(modified=now)
            )

    async def set_provenance(self, execution: str, record: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(ExecutionRow)
                .where(ExecutionRow.id == execution, ExecutionRow.provenance.is_(None))
                .values(provenance=record)
            )
