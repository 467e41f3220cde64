"""Fault injection and call counting shared by every emulator.

Each emulator app is wrapped in :class:`FaultInjector`. Rules are matched in order against
the method and path of a request; the first match may add latency, hang, or answer with an
error status for a fraction of calls. Rules come from configuration at start-up and can be
replaced at run time through the control API mounted at ``/_emulator``:

    GET  /_emulator/faults     the current rules
    PUT  /_emulator/faults     replace the rules (JSON list of :class:`FaultRule`)
    GET  /_emulator/calls      how many calls each ``METHOD path-template`` received
    POST /_emulator/reset      clear the call counters

Counting lets tests prove that an external operation was submitted exactly once.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CONTROL_PREFIX", "FaultInjector", "FaultRule"]

CONTROL_PREFIX = "/_emulator"


class FaultRule(BaseModel):
    """One fault: which calls it hits and what it does to them."""

    method: str | None = Field(None, description="HTTP method to match; any when absent.")
    path: str = Field(".*", description="Regular expression matched against the URL path.")
    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="Fraction of calls failed.")
    status: int = Field(503, ge=400, le=599, description="Status of an injected error.")
    latency: float = Field(0.0, ge=0.0, le=600.0, description="Seconds added before answering.")
    hang: bool = Field(False, description="Never answer (until the client gives up).")

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None


_rules_adapter = TypeAdapter(list[FaultRule])


class FaultInjector:
    """ASGI middleware: applies :class:`FaultRule`s and counts calls per route."""

    def __init__(self, app: ASGIApp, rules: list[FaultRule] | None = None, seed: int | None = None):
        self.app = app
        self.rules: list[FaultRule] = list(rules or [])
        self.calls: Counter[str] = Counter()
        self._random = random.Random(seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(CONTROL_PREFIX):
            response = await self._control(Request(scope, receive), path[len(CONTROL_PREFIX) :])
            await response(scope, receive, send)
            return
        self.calls[f"{method} {path}"] += 1
        for rule in self.rules:
            if not rule.matches(method, path):
                continue
            if rule.hang:
                await asyncio.Event().wait()
            if rule.latency:
                await asyncio.sleep(rule.latency)
            if rule.error_rate and self._random.random() < rule.error_rate:
                body = {"code": rule.status, "message": "injected fault"}
                await JSONResponse(body, status_code=rule.status)(scope, receive, send)
                return
            break
        await self.app(scope, receive, send)

    def count(self, method: str, path_regex: str) -> int:
        """Calls received whose ``METHOD path`` matches; used by tests and benchmarks."""
        pattern = re.compile(path_regex)
        return sum(
            n
            for key, n in self.calls.items()
            if key.split(" ", 1)[0] == method.upper() and pattern.search(key.split(" ", 1)[1])
        )

    async def _control(self, request: Request, sub: str) -> Response:
        if sub == "/faults" and request.method == "GET":
            return JSONResponse([r.model_dump() for r in self.rules])
        if sub == "/faults" and request.method == "PUT":
            try:
                self.rules = _rules_adapter.validate_json(await request.body())
            except ValueError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=422)
            return JSONResponse([r.model_dump() for r in self.rules])
        if sub == "/calls" and request.method == "GET":
            data: dict[str, Any] = dict(self.calls)
            return JSONResponse(data)
        if sub == "/reset" and request.method == "POST":
            self.calls.clear()
            return Response(status_code=204)
        return JSONResponse({"detail": "unknown emulator control route"}, status_code=404)
