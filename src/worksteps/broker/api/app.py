"""The broker application: one lifespan that migrates, sweeps expired offers, watches for the
server's stop (see :mod:`worksteps.broker.api.stopping`) and shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import Depends, FastAPI

from worksteps.broker.api.access import BrokerAccess
from worksteps.broker.api.openapi import describe_broker
from worksteps.broker.api.routes import router
from worksteps.broker.api.state import BrokerState
from worksteps.broker.api.status import router as status_router
from worksteps.broker.api.stopping import watch_for_stop
from worksteps.broker.db.migrate import upgrade
from worksteps.broker.engine.worker import Engine
from worksteps.broker.estimates import Estimator
from worksteps.broker.sessions import expire_offers, next_expiry
from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database
from worksteps.core.docs import docs_app_options, install_docs
from worksteps.core.errors import install_problem_handlers
from worksteps.core.serving import freeze_start_up
from worksteps.site.services import open_site_services

__all__ = ["create_app"]

log = logging.getLogger(__name__)

# Offers made by another replica are not signalled here: look at least this often.
_SWEEP_CEILING = 5.0


async def _sweep_expired(state: BrokerState) -> None:
    """Expire offers when they lapse, without waiting for any client to look.

    A new offer wakes the sweeper only when it has no deadline (all offers live ``offer_ttl``,
    so a new one never lapses before those pending), so making offers costs the sweeper no
    database work and, mostly, no wake-up at all.
    """
    ttl = state.settings.offer_ttl
    due: datetime | None = None  # unknown: look it up
    while True:
        now = datetime.now(UTC)
        if due is None or due <= now:
            try:
                await expire_offers(state.db, now)
                due = await next_expiry(state.db)
            except Exception:  # keep sweeping; the database may come back
                log.exception("expiry sweep failed")
                due = None
        ceiling = now + timedelta(seconds=_SWEEP_CEILING)
        wake_at = min(due, ceiling) if due is not None else ceiling
        delay = max(0.0, (wake_at - datetime.now(UTC)).total_seconds()) + 0.01
        if due is not None:
            # An offer made meanwhile lapses after ``due`` (all live ``offer_ttl``): no need
            # to be woken by each one, which would cost every request a wake-up here.
            await asyncio.sleep(delay)
            if due > wake_at:
                due = None  # the ceiling passed: look again (another replica may have offered)
            continue
        state.offers_created.clear()
        try:
            await asyncio.wait_for(state.offers_created.wait(), timeout=delay)
        except TimeoutError:
            continue  # the ceiling passed: look again (another replica may have offered)
        due = datetime.now(UTC) + ttl


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def create_app(settings: BrokerSettings | None = None) -> FastAPI:
    settings = settings or BrokerSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _ensure_sqlite_dir(settings.database_url)
        db = Database(settings.database_url)
        await upgrade(db)
        state = BrokerState(settings, db)
        app.state.broker = state
        tasks = [
            asyncio.create_task(_sweep_expired(state), name="expiry-sweeper"),
            asyncio.create_task(watch_for_stop(state), name="stop-watcher"),
        ]
        services = None
        if settings.services is not None:
            services = await open_site_services(settings.services)
            state.engine = Engine(db, settings, services, state.bus)
            state.estimator = Estimator(settings, services)
            tasks.append(asyncio.create_task(state.engine.run(), name="engine"))
        freeze_start_up()
        try:
            yield
        finally:
            state.stop()
            # The engine's work is durable (its steps are stored and resume at the next
            # start): cancelling it here loses nothing, and waiting for it would hold the stop.
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if services is not None:
                await services.aclose()
            await state.offers.close()
            await db.dispose()

    app = FastAPI(
        title=f"Worksteps Execution Broker ({settings.site})",
        version="1.0",
        summary="IVOA ExecutionBroker v1.0 with a real capacity calendar.",
        lifespan=lifespan,
        **docs_app_options(),
    )
    install_docs(app)
    install_problem_handlers(app)
    describe_broker(app)
    access = [Depends(BrokerAccess(settings))]
    app.include_router(status_router, dependencies=access)
    app.include_router(router, dependencies=access)
    return app
