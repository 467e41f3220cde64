"""The broker under test, with its preparation engine, run as its own uvicorn process (see
``common.processes``).

Only what the site needs is set (the nested ``services`` and ``engine`` models go in as JSON):
the engine keeps its defaults unless ``engine`` overrides some of them. ``app`` is the factory
uvicorn serves: the product's unless an experiment names another (a variant of the broker
found on ``PYTHONPATH``, to measure a proposed change); ``profile`` runs it under cProfile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bench_root  # noqa: F401  (puts bench/ on the path for ``common``)

from common.processes import BROKER_APP, UvicornProcess

__all__ = ["BrokerProcess"]


class BrokerProcess(UvicornProcess):
    """``with BrokerProcess(url, services) as broker:`` serves at ``broker.url``."""

    def __init__(
        self,
        database_url: str,
        services: dict[str, Any],
        engine: dict[str, Any] | None = None,
        startup_timeout: float = 60.0,
        profile: Path | None = None,
        app: str = BROKER_APP,
    ) -> None:
        settings = {
            "WORKSTEPS_BROKER_SITE": str(services["site"]),
            "WORKSTEPS_BROKER_DATABASE_URL": database_url,
            "WORKSTEPS_BROKER_SERVICES": json.dumps(services),
            "WORKSTEPS_BROKER_CAPACITY__CORES": "64",
            "WORKSTEPS_BROKER_CAPACITY__MEMORY": "256",
        }
        if engine:
            settings["WORKSTEPS_BROKER_ENGINE"] = json.dumps(engine)
        super().__init__(settings, app=app, startup_timeout=startup_timeout, profile=profile)
        self.database_url = database_url
        self.services = services
        self.engine = engine or {}

    def cpu_seconds(self) -> tuple[float, float]:  # type: ignore[override]
        """User plus system CPU seconds used so far: the whole process, and its main thread
        (the event loop; the rest is worker threads: the site clients that run in
        ``asyncio.to_thread`` and, on SQLite, the driver's connection threads)."""
        return super().cpu_seconds(), self.loop_cpu_seconds()
