"""What a running broker app holds: settings, database and the expiry sweeper's wake-up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from worksteps.broker.settings import BrokerSettings
from worksteps.core.database import Database

__all__ = ["BrokerState"]


@dataclass
class BrokerState:
    settings: BrokerSettings
    db: Database
    offers_created: asyncio.Event = field(default_factory=asyncio.Event)
