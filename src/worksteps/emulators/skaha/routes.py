"""Skaha v1 under ``/skaha/v1``: sessions, context, images, repositories.

Every call needs a bearer token (SkahaConfig.user_for_token names its user); a user sees and
touches only their own sessions, and someone else's session answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from worksteps.emulators.skaha.config import SkahaConfig
from worksteps.emulators.skaha.create import build_session
from worksteps.emulators.skaha.errors import SkahaError
from worksteps.emulators.skaha.model import (
    RUNNING,
    SessionRecord,
    events_table,
    public_document,
    session_document,
)
from worksteps.emulators.skaha.supervisor import SessionSupervisor

__all__ = ["router"]

router = APIRouter(prefix="/skaha/v1")


def _config(request: Request) -> SkahaConfig:
    config: SkahaConfig = request.app.state.config
    return config


def _supervisor(request: Request) -> SessionSupervisor:
    supervisor: SessionSupervisor = request.app.state.supervisor
    return supervisor


def authenticated_user(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    user = _config(request).user_for_token(token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        raise SkahaError(401, "not authenticated", {"WWW-Authenticate": "Bearer"})
    return user


User = Annotated[str, Depends(authenticated_user)]


async def _parameters(request: Request) -> list[tuple[str, str]]:
    """Query parameters, then those of a form-encoded body (Skaha reads both)."""
    params = list(request.query_params.multi_items())
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        body = await request.body()
        if body:
            params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return params


def _own_session(request: Request, user: str, session_id: str) -> SessionRecord:
    record = _supervisor(request).find(user, session_id)
    if record is None:
        raise SkahaError(404, f"session {session_id} not found")
    return record


def _matches(record: SessionRecord, kind: str | None, status: str | None) -> bool:
    return (kind is None or record.kind.lower() == kind.lower()) and (
        status is None or record.status.lower() == status.lower()
    )


def _stats(request: Request) -> dict[str, Any]:
    config = _config(request)
    sessions = list(_supervisor(request).sessions.values())
    running = [s for s in sessions if s.status == RUNNING]
    return {
        "instances": {
            "session": sum(1 for s in running if s.kind != "headless"),
            "desktopApp": 0,
            "headless": sum(1 for s in running if s.kind == "headless"),
            "total": len(running),
        },
        "cores": {
            "requestedCPUCores": float(sum(s.request_cores for s in running)),
            "cpuCoresAvailable": float(config.max_cores),
            "maxCPUCores": {
                "cpuCores": float(config.max_cores),
                "withRam": f"{config.max_ram_gb}G",
            },
        },
        "ram": {
            "requestedRAM": f"{sum(s.request_ram for s in running)}G",
            "ramAvailable": f"{config.max_ram_gb}G",
            "maxRAM": {"ram": f"{config.max_ram_gb}G", "withCPUCores": float(config.max_cores)},
        },
    }


@router.get("/session")
async def list_sessions(
    request: Request,
    user: User,
    kind: Annotated[str | None, Query(alias="type")] = None,
    status: str | None = None,
    view: str | None = None,
) -> Response:
    if view == "stats":
        return JSONResponse(_stats(request))
    supervisor = _supervisor(request)
    if view == "all":
        everyone = [s for s in supervisor.sessions.values() if _matches(s, kind, status)]
        return JSONResponse([public_document(s) for s in everyone])
    mine = [s for s in supervisor.owned_by(user) if _matches(s, kind, status)]
    if view == "interactive":
        mine = [s for s in mine if s.kind != "headless"]
    run_as = _config(request).run_as_uid
    return JSONResponse([session_document(s, run_as) for s in mine])


@router.post("/session")
async def create_session(request: Request, user: User) -> Response:
    record = build_session(
        await _parameters(request),
        user=user,
        config=_config(request),
        supervisor=_supervisor(request),
        sessions_host=str(request.base_url).rstrip("/"),
    )
    _supervisor(request).launch(record)
    return PlainTextResponse(record.id + "\n")


@router.get("/session/{session_id}")
async def get_session(
    request: Request, user: User, session_id: str, view: str | None = None
) -> Response:
    record = _own_session(request, user, session_id)
    if view == "logs":
        path = _config(request).log_path(record.id)
        text = path.read_text(errors="replace") if path.exists() else ""
        return PlainTextResponse(text)
    if view == "events":
        return PlainTextResponse(events_table(record))
    return JSONResponse(session_document(record, _config(request).run_as_uid))


@router.post("/session/{session_id}")
async def act_on_session(request: Request, user: User, session_id: str) -> Response:
    params = await _parameters(request)
    action = next((value for key, value in params if key == "action"), "")
    if not action:
        raise SkahaError(400, "Cannot modify an existing session")
    if action.lower() != "renew":
        raise SkahaError(400, "unrecognized action")
    record = _supervisor(request).find(user, session_id)
    if record is None or not record.active:
        # Skaha looks for an active job of this user and session; it answers 400, not 404.
        raise SkahaError(400, f"No active job for user {user} with session {session_id}")
    _supervisor(request).renew(record)
    return Response(status_code=200)


@router.delete("/session/{session_id}")
async def delete_session(request: Request, user: User, session_id: str) -> Response:
    record = _own_session(request, user, session_id)
    await _supervisor(request).delete(record)
    return Response(status_code=200)


@router.get("/context")
async def context(request: Request, user: User) -> Response:
    config = _config(request)
    return JSONResponse(
        {
            "cores": {
                "default": config.default_cores,
                "defaultRequest": config.default_request_cores,
                "defaultLimit": config.default_limit_cores,
                "defaultHeadless": config.default_request_cores,
                "options": config.core_options,
            },
            "memoryGB": {
                "default": config.default_ram_gb,
                "defaultRequest": config.default_request_ram_gb,
                "defaultLimit": config.default_limit_ram_gb,
                "defaultHeadless": config.default_request_ram_gb,
                "options": config.ram_options,
            },
            "gpus": {"options": config.gpu_options},
            "maxInteractiveSessions": config.max_user_sessions,
        }
    )


@router.get("/image")
async def images(
    request: Request, user: User, kind: Annotated[str | None, Query(alias="type")] = None
) -> Response:
    listed = [
        {"id": image.id, "types": image.types, "digest": image.digest}
        for image in _config(request).images
        if kind is None or kind in image.types
    ]
    return JSONResponse(listed)


@router.get("/repository")
async def repositories(request: Request, user: User) -> Response:
    return JSONResponse(_config(request).registry_hosts)
