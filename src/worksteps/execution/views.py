"""Executions as the API shows them (JSON-ready dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worksteps.execution.store import ExecutionRecord, OfferRecord
from worksteps.schema.isotime import format_instant

__all__ = ["access_link", "execution_view", "summary_view"]


def _instant(value: datetime | None) -> str | None:
    return format_instant(value) if value is not None else None


def access_link(session: dict[str, Any] | None) -> str | None:
    """The first connector location of a session document: where the user goes."""
    for connector in (session or {}).get("connectors") or []:
        if isinstance(connector, dict) and isinstance(connector.get("location"), str):
            location: str = connector["location"]
            return location
    return None


def _offer(offer: OfferRecord, now: datetime) -> dict[str, Any]:
    expired = offer.expires is not None and offer.expires <= now
    return offer.summary | {
        "state": "expired" if expired and offer.state == "offered" else offer.state,
        "expired": expired,
        "error": offer.error,
    }


def summary_view(record: ExecutionRecord, now: datetime) -> dict[str, Any]:
    """The execution in a list. An offered one whose offers have all expired shows as
    ``expired``: nothing is left to select (its stored state moves no more)."""
    return {
        "id": record.id,
        "owner": record.owner,
        "state": "expired" if record.lapsed(now) else record.state,
        "created": _instant(record.created),
        "modified": _instant(record.modified),
        "workstep": record.workstep,
        "site": record.site,
        "phase": record.phase,
    }


def execution_view(
    record: ExecutionRecord, now: datetime, relay_error: str | None = None
) -> dict[str, Any]:
    """Everything about one execution: brokers, ranked offers, the choice, the session."""
    brokers = []
    for broker in record.brokers:
        item: dict[str, Any] = {
            "site": broker.site,
            "url": broker.url,
            "status": broker.status,
            "elapsed": broker.elapsed,
            "offers": [o.uuid for o in record.offers if o.site == broker.site],
            "messages": broker.messages,
            "error": broker.error,
            "offerset": broker.offerset,
        }
        if broker.late is not None:
            item["late"] = broker.late
        brokers.append(item)
    view: dict[str, Any] = summary_view(record, now) | {
        "deadline": record.deadline,
        "request": record.request,
        "brokers": brokers,
        "offers": [_offer(o, now) for o in record.offers],
        "selected": None,
        "session": None,
        "provenance": record.provenance is not None,
    }
    if record.selected is not None and record.state in ("selected", "ended"):
        chosen = record.offer(record.selected)
        view["selected"] = {
            "offer": record.selected,
            "site": record.site,
            "broker": record.broker,
            "rank": chosen.rank if chosen else None,
        }
        view["session"] = {
            "url": record.session_url,
            "phase": record.phase,
            "access": access_link(record.session),
            "connectors": (record.session or {}).get("connectors") or [],
            "accepted": _instant(record.accepted_at),
            "ended": _instant(record.ended_at),
        }
    if relay_error is not None:
        view["relay"] = {"error": relay_error}
    return view
