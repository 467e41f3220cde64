"""State survives a restart, and the broker expires offers on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from running import start_broker, stop_broker
from sqlalchemy import select

from worksteps.broker.db.tables import BookingRow, SessionRow
from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database


def _rows(url: str, uuids: list[str]) -> dict[str, tuple[str, str]]:
    async def read() -> dict[str, tuple[str, str]]:
        db = Database(url)
        try:
            async with db.read() as conn:
                found = await conn.execute(
                    select(SessionRow.uuid, SessionRow.phase, BookingRow.state)
                    .join(BookingRow, BookingRow.session == SessionRow.uuid)
                    .where(SessionRow.uuid.in_(uuids))
                )
                return {r.uuid: (r.phase, r.state) for r in found}
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_state_survives_a_restart(
    broker_settings: BrokerSettings, make_request: Callable[..., dict[str, Any]]
) -> None:
    first = start_broker(broker_settings)
    try:
        offers = first.offers(make_request((4, 8)))["offers"]
        chosen = offers[0]["meta"]["uuid"]
        assert first.update(chosen, "ACCEPTED").status_code == 200
        offerset_url = offers[0]["meta"]["url"]
    finally:
        stop_broker(first)
    second = start_broker(broker_settings)
    try:
        assert second.session(chosen)["phase"] == "ACCEPTED"
        assert second.client.get(offerset_url.replace(first.url, second.url)).status_code == 200
        # the booking still counts: a request for the whole site at that time cannot be met
        assert second.update(offers[1]["meta"]["uuid"], "ACCEPTED").status_code == 409
    finally:
        stop_broker(second)


def test_offers_expire_without_any_client_asking(
    broker_settings: BrokerSettings, make_request: Callable[..., dict[str, Any]]
) -> None:
    settings = broker_settings.model_copy(update={"offer_ttl": timedelta(seconds=1)})
    broker = start_broker(settings)
    try:
        offers = broker.offers(make_request((16, 16)))["offers"]
        uuids = [o["meta"]["uuid"] for o in offers]
        assert set(_rows(settings.database_url, uuids).values()) == {("OFFERED", "HELD")}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = _rows(settings.database_url, uuids)
            if set(rows.values()) == {("EXPIRED", "RELEASED")}:
                break
            time.sleep(0.1)
        assert set(_rows(settings.database_url, uuids).values()) == {("EXPIRED", "RELEASED")}
        refused = broker.update(uuids[0], "ACCEPTED")
        assert refused.status_code == 409
        assert "EXPIRED" in refused.json()["detail"]
        # the released hold no longer counts
        assert broker.offers(make_request((16, 16)))["result"] == "YES"
    finally:
        stop_broker(broker)
