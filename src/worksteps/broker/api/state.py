"""What a running broker app holds: settings, database, offer set maker, event bus, and the
engine if any."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worksteps.broker.db.holds import open_hold_store
from worksteps.broker.engine.events import EventBus
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
