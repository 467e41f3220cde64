"""The IVOA ExecutionBroker routes, with the pre-2026 names as aliases."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from worksteps.broker.api.access import owner_of
from worksteps.broker.api.media import read_body, respond, validation_problem
from worksteps.broker.api.openapi import EXECUTION_REQUEST_BODY, UPDATE_BODY
from worksteps.broker.api.state import BrokerState
from worksteps.broker.api.status import MAX_WAIT, session_with_wait
from worksteps.broker.estimates import locality_message
from worksteps.broker.intake import Intake, take_in
from worksteps.broker.sessions import (
    apply_update,
    get_component,
    get_offer_set,
    get_session,
    render_document,
)
from worksteps.core.clock import utcnow
from worksteps.core.errors import BadRequest
from worksteps.schema import kinds
from worksteps.schema.common import SessionPhase, Update
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.legacy import normalize_request, normalize_update

__all__ = ["router"]

router = APIRouter()
_update = TypeAdapter[Update](Update)
_FAMILIES = ("executables", "compute", "storage", "data", "volumes")


def _state(request: Request) -> BrokerState:
    state: BrokerState = request.app.state.broker
    return state


def _base_url(request: Request, state: BrokerState) -> str:
    base = state.settings.base_url or str(request.base_url)
    return base if base.endswith("/") else base + "/"


async def _take_in(state: BrokerState, parsed: ExecutionRequest, now: datetime) -> Intake:
    """Estimate the preparation from the site's state and history, then check the request."""
    if state.estimator.services is None:  # booking only: nothing to look at
        return take_in(parsed, state.settings, now)
    async with state.db.read() as conn:
        history = await state.estimator.history(conn)
    estimate = await state.estimator.estimate(parsed, history)
    intake = take_in(parsed, state.settings, now, estimate.total, estimate.notes)
    intake.notes.append(locality_message(estimate))
    return intake


async def _execution_request(request: Request, state: BrokerState) -> tuple[ExecutionRequest, Any]:
    body = await read_body(request, state.settings.max_body_bytes)
    try:
        parsed = ExecutionRequest.model_validate(normalize_request(body.document))
    except ValidationError as exc:
        raise validation_problem(exc, "execution request") from None
    return parsed, body.media


_REQUEST = {"requestBody": EXECUTION_REQUEST_BODY}


@router.post(
    "/requests",
    status_code=303,
    summary="Ask for offers (ExecutionRequest)",
    openapi_extra=_REQUEST,
)
@router.post("/offersets", status_code=303, include_in_schema=False)
async def post_request(request: Request) -> Response:
    state = _state(request)
    parsed, media = await _execution_request(request, state)
    now = utcnow()
    intake = await _take_in(state, parsed, now)
    base = _base_url(request, state)
    created, body = await state.offers.create(
        intake, base_url=base, now=now, owner=owner_of(request)
    )
    state.offers_created.set()
    doc = dict(body)
    doc["expires"] = (now + state.settings.offer_ttl).isoformat().replace("+00:00", "Z")
    doc["offers"] = [render_document(o.document, SessionPhase.OFFERED, now) for o in created.offers]
    location = f"{base}offersets/{created.uuid}"
    return respond(
        request,
        doc,
        root="offers-response",
        status=303,
        headers={"Location": location},
        request_media=media,
    )


@router.post(
    "/direct",
    status_code=303,
    summary="Run at once, without choosing an offer",
    openapi_extra=_REQUEST,
)
@router.post("/sessions", status_code=303, include_in_schema=False)
async def post_direct(request: Request) -> Response:
    state = _state(request)
    parsed, media = await _execution_request(request, state)
    now = utcnow()
    intake = await _take_in(state, parsed, now)
    base = _base_url(request, state)
    created, body = await state.offers.create(
        intake, base_url=base, now=now, owner=owner_of(request), max_offers=1
    )
    if not created.offers:
        messages = body["meta"].get("messages", [])
        detail = "; ".join(str(m.get("message")) for m in messages) or "no offer"
        raise BadRequest(
            f"The request cannot be run here: {detail}",
            reason="direct-refused",
            extra={
                "session": {
                    "kind": kinds.SESSION_SCHEDULED,
                    "phase": "FAILED",
                    "meta": {"messages": messages},
                }
            },
        )
    offer = created.offers[0]
    accept = _phase_update("ACCEPTED")
    await apply_update(state.db, offer.uuid, accept, now, engine=state.engine_settings)
    state.changed(offer.uuid)  # the engine starts preparing it at once
    doc = await get_session(state.db, offer.uuid, utcnow())
    return respond(
        request,
        doc,
        root="execution",
        status=303,
        headers={"Location": f"{base}sessions/{offer.uuid}"},
        request_media=media,
    )


def _phase_update(value: str) -> Update:
    return _update.validate_python(
        {"kind": "uri:enum-value-update", "path": "phase", "value": value}
    )


@router.get("/offersets/{uuid}", summary="An offer set and its offers")
async def get_offerset(uuid: UUID, request: Request) -> Response:
    doc = await get_offer_set(_state(request).db, str(uuid), utcnow())
    return respond(request, doc, root="offers-response")


@router.get("/sessions/{uuid}", summary="A session (an offer, or what became of it)")
async def get_one_session(
    uuid: UUID,
    request: Request,
    wait: float | None = Query(
        None,
        ge=0,
        le=MAX_WAIT,
        description="Answer as soon as the session changes, or after this many seconds.",
    ),
) -> Response:
    return await session_with_wait(request, str(uuid), wait)


@router.post(
    "/sessions/{uuid}",
    summary="Update a session: accept, reject or cancel",
    openapi_extra={"requestBody": UPDATE_BODY},
)
async def post_session_update(uuid: UUID, request: Request) -> Response:
    state = _state(request)
    body = await read_body(request, state.settings.max_body_bytes)
    try:
        change = _update.validate_python(normalize_update(body.document))
    except ValidationError as exc:
        raise validation_problem(exc, "update") from None
    doc = await apply_update(state.db, str(uuid), change, utcnow(), engine=state.engine_settings)
    state.changed(str(uuid))
    return respond(request, doc, root="execution", request_media=body.media)


def _component_route(family: str) -> None:
    async def get_component_doc(uuid: UUID, request: Request) -> Response:
        doc = await get_component(_state(request).db, family, str(uuid))
        return respond(request, doc, root=family.rstrip("s") or family)

    router.add_api_route(
        f"/{family}/{{uuid}}",
        get_component_doc,
        methods=["GET"],
        summary=f"One {family} component of a session",
        name=f"get_{family}",
    )


for _family in _FAMILIES:
    _component_route(_family)
