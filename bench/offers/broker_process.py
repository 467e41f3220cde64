"""The broker under test, run as its own uvicorn process (see ``common.processes``), with the
preloaded site's name and capacity and the offer TTL as its settings."""

from __future__ import annotations

from datetime import timedelta

import bench_root  # noqa: F401  (puts bench/ on the path for ``common``)
from preload import SITE, SiteCapacity

from common.processes import UvicornProcess

__all__ = ["BrokerProcess"]


def _seconds(value: timedelta) -> str:
    return f"PT{int(value.total_seconds())}S"


class BrokerProcess(UvicornProcess):
    """``with BrokerProcess(url, capacity) as broker:`` serves at ``broker.url`` until the end."""

    def __init__(
        self,
        database_url: str,
        capacity: SiteCapacity,
        offer_ttl: timedelta = timedelta(minutes=5),
        startup_timeout: float = 90.0,
    ) -> None:
        super().__init__(
            {
                "WORKSTEPS_BROKER_SITE": SITE,
                "WORKSTEPS_BROKER_DATABASE_URL": database_url,
                "WORKSTEPS_BROKER_OFFER_TTL": _seconds(offer_ttl),
                "WORKSTEPS_BROKER_CAPACITY__CORES": str(capacity.cores),
                "WORKSTEPS_BROKER_CAPACITY__MEMORY": str(capacity.memory),
                "WORKSTEPS_BROKER_CAPACITY__GPUS": str(capacity.gpus),
                "WORKSTEPS_BROKER_CAPACITY__STORAGE": str(capacity.storage),
            },
            startup_timeout=startup_timeout,
        )
