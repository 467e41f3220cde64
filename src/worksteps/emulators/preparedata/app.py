"""The CANSRC PrepareData API: ``POST /preparedata`` and ``GET /preparedata/{task_id}``.

Wire format as observed from the real service: the request body is a JSON list of
``[did, source_path, destination]`` triples, the answer ``{"task_id": …}``; polling answers
``{"status": …}`` with Celery-like states (configurable). Beyond ``status`` the emulator also
reports ``progress`` (bytes and files), ``destination``, ``error`` and the Rucio ``rules`` it
created; clients must treat these as optional, since the real service is not known to send them.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worksteps.emulators.faults import FaultInjector
from worksteps.emulators.preparedata.config import PrepareDataConfig
from worksteps.emulators.preparedata.tasks import Task, TaskBook, clean_destination
from worksteps.emulators.rucio.catalogue import RucioCatalogue

__all__ = ["create_app"]


def create_app(config: PrepareDataConfig, catalogue: RucioCatalogue) -> FaultInjector:
    """The emulator as an ASGI app, staging through the site's Rucio ``catalogue``."""
    service = _PrepareDataAPI(config, TaskBook(config, catalogue))
    routes = [
        Route("/preparedata", service.submit, methods=["POST"]),
        Route("/preparedata/", service.submit, methods=["POST"]),
        Route("/preparedata/{task_id}", service.status, methods=["GET"]),
    ]
    return FaultInjector(Starlette(routes=routes), rules=config.faults)


def _error(status: int, detail: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _triples(data: Any) -> list[tuple[str, str, str]] | None:
    if not isinstance(data, list) or not data:
        return None
    out = []
    for item in data:
        if not (
            isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item)
        ):
            return None
        out.append((item[0], item[1], item[2]))
    return out


class _PrepareDataAPI:
    def __init__(self, config: PrepareDataConfig, book: TaskBook) -> None:
        self.config = config
        self.book = book

    def user(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self.config.tokens.get(token.strip())

    async def submit(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return _error(401, "a valid bearer token is required")
        try:
            items = _triples(json.loads(await request.body()))
        except ValueError:
            items = None
        if items is None:
            return _error(400, "body must be a JSON list of [did, source_path, destination]")
        try:
            destinations = {clean_destination(destination) for _, _, destination in items}
        except ValueError as exc:
            return _error(400, str(exc))
        if len(destinations) != 1:
            return _error(400, "all items of a task must share one destination")
        task = await run_in_threadpool(self.book.submit, user, items)
        return JSONResponse({"task_id": task.id})

    async def status(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            return _error(401, "a valid bearer token is required")
        task = self.book.get(request.path_params["task_id"], user)
        if task is None:
            return _error(404, "no such task")
        return JSONResponse(await run_in_threadpool(self._describe, task))

    def _describe(self, task: Task) -> dict[str, Any]:
        progress = self.book.progress(task)
        if not self.config.extensions:
            return {"task_id": task.id, "status": progress.status}
        prefix = self.config.home_prefix or str(self.config.home_root)
        percent = (
            100.0 * progress.bytes_done / progress.bytes_total if progress.bytes_total else 0.0
        )
        if progress.status == self.config.statuses.done:
            percent = 100.0
        return {
            "task_id": task.id,
            "status": progress.status,
            "error": progress.error,
            "destination": f"{prefix.rstrip('/')}/{task.user}/{task.destination}",
            "progress": {
                "bytes_done": progress.bytes_done,
                "bytes_total": progress.bytes_total,
                "percent": round(percent, 2),
                "files_done": progress.files_done,
                "files_total": len(task.files),
            },
            "rules": task.rule_ids,
        }
