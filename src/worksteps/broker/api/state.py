"""What a running broker app holds: settings, database, offer set maker, event bus, the
engine if any, and whether the server is stopping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worksteps.broker.db.holds import open_hold_store
from worksteps.broker.engine.events import EventBus, Subscription
from worksteps.broker.estimates import Estimator
from worksteps.broker.offersets import OfferSetMaker
from worksteps.broker.settings import BrokerSettings, EngineSettings
from worksteps.core.database import Database

if TYPE_CHECKING:
    from worksteps.broker.engine.worker import Engine

__all__ = ["BrokerState"]


@dataclass
class BrokerState:
    settings: BrokerSettings
    db: Database
    offers_created: asyncio.Event = field(default_factory=asyncio.Event)
    bus: EventBus = field(default_factory=EventBus)
    engine: Engine | None = None
    estimator: Estimator = field(init=False)
    offers: OfferSetMaker = field(init=False)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server begins to stop: long-polls answer and event streams end at once."""
    _followers: set[Subscription] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.estimator = Estimator(self.settings, None)
        self.offers = OfferSetMaker(open_hold_store(self.db), self.settings)

    @property
    def engine_settings(self) -> EngineSettings | None:
        """The engine's settings when this broker prepares sessions (else booking only)."""
        return self.settings.engine if self.engine is not None else None

    def changed(self, session: str) -> None:
        """Wake long-polls, event streams and the engine after a change to ``session``."""
        self.bus.notify(session)
        if self.engine is not None:
            self.engine.wake.set()

    @contextlib.contextmanager
    def follow(self, session: str) -> Iterator[Subscription]:
        """Follow ``session`` for a client (long-poll, event stream) until the ``with`` block
        ends; :meth:`stop` wakes it."""
        with self.bus.subscribe(session) as changes:
            self._followers.add(changes)
            try:
                if self.stopping.is_set():
                    changes.set()
                yield changes
            finally:
                self._followers.discard(changes)

    def stop(self) -> None:
        """The server is stopping: wake every client's follower, to answer or end at once
        (uvicorn waits for every open request before it shuts the app down)."""
        self.stopping.set()
        for changes in self._followers:
            changes.set()
