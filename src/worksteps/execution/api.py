"""The HTTP face of the execution service: a router for the gateway to mount, and the app
that ``worksteps serve execution`` runs.

Routes (all but ``/health`` need a bearer token):

    POST /executions                     run a workstep: fan out, rank  -> 201 + execution
                                         (429 + Retry-After past the caller's rate limit)
    GET  /executions                     the caller's executions (admin: everyone's)
    GET  /executions/{id}[?wait=N]       one execution, its session followed at the broker
    POST /executions/{id}/select         {"offer": uuid}: ACCEPT it, REJECT all others
    POST /executions/{id}/cancel         withdraw the offers, or cancel the session
    GET  /executions/{id}/events         server-sent events of the session (Last-Event-ID)
    GET  /executions/{id}/provenance     the W3C PROV-JSON record, once the session ended
    GET  /sites[?check=true]             the brokers, their capabilities and health
    GET  /health                         liveness (public)
"""

# No ``from __future__ import annotations``: FastAPI must resolve the dependency aliases
# built inside execution_router().

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from worksteps.core.auth import Authenticator, Principal, TokenVerifier
from worksteps.core.clock import utcnow
from worksteps.core.docs import docs_app_options, install_docs
from worksteps.core.errors import PayloadTooLarge, install_problem_handlers
from worksteps.core.openapi import document_problems
from worksteps.core.serving import freeze_start_up
from worksteps.execution.registry import Registry, load_sites
from worksteps.execution.relay import MAX_WAIT
from worksteps.execution.service import ExecutionService
from worksteps.execution.settings import ExecutionSettings
from worksteps.execution.views import execution_view, summary_view
from worksteps.schema.codecs import decode, media_type_of

__all__ = ["create_app", "execution_router"]


class SelectBody(BaseModel):
    """Which offer to take."""

    model_config = ConfigDict(extra="forbid")
    offer: UUID = Field(description="The offer's uuid, as listed in the execution.")


_EXECUTE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        media: {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "request": {"type": "object", "description": "An IVOA ExecutionRequest."},
                    "workstep_url": {
                        "type": "string",
                        "description": "A workstep of the Workstep Editor, instead of request.",
                    },
                    "workstep": {
                        "type": "object",
                        "properties": {
                            "uuid": {"type": "string", "format": "uuid"},
                            "version": {"type": "integer", "minimum": 1},
                            "name": {"type": "string"},
                        },
                        "required": ["uuid", "version"],
                    },
                    "deadline": {"type": "number", "exclusiveMinimum": 0},
                    "sites": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                },
            }
        }
        for media in ("application/json", "application/yaml")
    },
}


_RATE_LIMITED: dict[str, Any] = {
    "description": "The caller has asked for offers too often; retry after the given time.",
    "headers": {
        "Retry-After": {
            "description": "Seconds until an offer request will be accepted again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


_EVENT_STREAM: dict[str, Any] = {
    "description": "The session's events (`phase`, `step`, `progress`) as they happen; "
    "`id` is the broker's event id, for `Last-Event-ID`.",
    "content": {
        "text/event-stream": {
            "schema": {  # one event
                "type": "object",
                "required": ["data"],
                "properties": {
                    "event": {"type": "string", "description": "phase, step, progress, relay"},
                    "id": {"type": "string"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"type": "object"},
                    },
                    "retry": {"type": "integer"},
                },
            }
        }
    },
}


async def _read_body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit}.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    return decode(raw, media_type_of(request.headers.get("content-type"), raw))


def execution_router(
    service: ExecutionService, authenticate: Callable[..., Awaitable[Principal]]
) -> APIRouter:
    """The routes of the Global Execution API, each authenticated by ``authenticate``."""
    caller = Annotated[Principal, Depends(authenticate)]
    router = APIRouter(tags=["executions"])

    def _view(request: Request, record: Any, relay_error: str | None = None) -> dict[str, Any]:
        view = execution_view(record, utcnow(), relay_error)
        view["links"] = {
            "self": str(request.url_for("get_execution", execution=record.id)),
            "events": str(request.url_for("execution_events", execution=record.id)),
            "provenance": str(request.url_for("execution_provenance", execution=record.id)),
        }
        return view

    @router.post(
        "/executions",
        status_code=201,
        summary="Ask every broker for offers",
        openapi_extra={"requestBody": _EXECUTE_BODY},
        responses={429: _RATE_LIMITED},
    )
    async def create_execution(request: Request, principal: caller) -> JSONResponse:
        body = await _read_body(request, service.settings.max_body_bytes)
        record = await service.execute(principal, body)
        view = _view(request, record)
        return JSONResponse(view, status_code=201, headers={"Location": view["links"]["self"]})

    @router.get("/executions", summary="The caller's executions, newest first")
    async def list_executions(
        principal: caller, limit: int = Query(100, ge=1, le=1000)
    ) -> dict[str, Any]:
        records = await service.executions(principal, limit)
        return {"executions": [summary_view(r, utcnow()) for r in records]}

    @router.get("/executions/{execution}", summary="One execution (long-poll with wait)")
    async def get_execution(
        execution: UUID,
        request: Request,
        principal: caller,
        wait: float | None = Query(
            None, ge=0, le=MAX_WAIT, description="Answer when the session changes, or after N s."
        ),
    ) -> dict[str, Any]:
        record, relay_error = await service.get(principal, str(execution), wait)
        return _view(request, record, relay_error)

    @router.post("/executions/{execution}/select", summary="Take one offer, reject the rest")
    async def select_offer(
        execution: UUID, choice: SelectBody, request: Request, principal: caller
    ) -> dict[str, Any]:
        record = await service.select(principal, str(execution), str(choice.offer))
        return _view(request, record)

    @router.post("/executions/{execution}/cancel", summary="Withdraw the offers or cancel")
    async def cancel_execution(
        execution: UUID, request: Request, principal: caller
    ) -> dict[str, Any]:
        record = await service.cancel(principal, str(execution))
        return _view(request, record)

    @router.get(
        "/executions/{execution}/events",
        summary="Server-sent events of the session",
        response_class=EventSourceResponse,
        responses={200: _EVENT_STREAM},
    )
    async def execution_events(
        execution: UUID,
        principal: caller,
        last_event: str | None = Header(None, alias="Last-Event-ID"),
        after: int | None = Query(None, ge=0, description="Resume after this event id."),
    ) -> EventSourceResponse:
        start = after
        if start is None and last_event is not None and last_event.strip().isdigit():
            start = int(last_event.strip())
        events = await service.events(principal, str(execution), start)
        return EventSourceResponse(events, ping=10)

    @router.get("/executions/{execution}/provenance", summary="The session's PROV-JSON record")
    async def execution_provenance(execution: UUID, principal: caller) -> dict[str, Any]:
        return await service.provenance(principal, str(execution))

    @router.get("/sites", summary="The federation's brokers, capabilities and health")
    async def list_sites(
        principal: caller,
        check: bool = Query(False, description="Ask every broker now."),
    ) -> dict[str, Any]:
        return {"sites": await service.sites(principal, check)}

    return router


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


def build_registry(settings: ExecutionSettings) -> Registry:
    """The sites of the sites file and of the settings; SitesFileError when invalid."""
    sites = load_sites(settings.sites_file) if settings.sites_file is not None else []
    return Registry([*sites, *settings.sites])


def create_app(settings: ExecutionSettings) -> FastAPI:
    """The execution service as its own application (refuses to start on a bad sites file)."""
    service = ExecutionService(settings, build_registry(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _ensure_sqlite_dir(settings.database_url)
        await service.start()
        freeze_start_up()
        try:
            yield
        finally:
            await service.aclose()

    app = FastAPI(
        title="Worksteps Execution",
        version="1.0",
        summary="Ask every site's broker for offers, choose one, follow the session.",
        lifespan=lifespan,
        **docs_app_options(),
    )
    install_docs(app)
    app.state.execution = service
    install_problem_handlers(app)
    document_problems(app)

    @app.get("/health", summary="Liveness", tags=["health"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "sites": len(service.registry)}

    authenticate = Authenticator(TokenVerifier(settings.auth))
    app.include_router(execution_router(service, authenticate))
    return app
