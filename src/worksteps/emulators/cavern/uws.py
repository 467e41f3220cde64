"""Transfers and recursive deletes as UWS jobs: ``/synctrans``, ``/xfer``, ``/transfers``,
``/async-delete``.

Sync negotiation (``pushToVoSpace``/``pullFromVoSpace``) answers 303 to ``/xfer/{id}``, whose
GET is the transfer document with one pre-authorised endpoint per requested protocol. The
``vos`` client then reads ``/transfers/{id}/phase`` (the same job), so a failed negotiation is
an ERROR job whose ``/xfer`` answers with the fault. Async jobs are created PENDING (303 to the
job), started by ``PHASE=RUN`` (or ``?PHASE=RUN`` on creation) and polled by phase, by the
job document (with UWS 1.1 ``?WAIT=``) or by ``/error``.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .documents import Protocol, Transfer, parse_transfer, transfer_document
from .errors import VOSpaceFault
from .jobs import Job, Phase, job_document
from .paths import parse_node_uri
from .service import CavernService, Grant, form_fields, handles_faults

__all__ = ["job_routes"]

VOSPACE_CORE = "ivo://ivoa.net/vospace/core#"
_GET = {VOSPACE_CORE + "httpget", VOSPACE_CORE + "httpsget"}
_PUT = {VOSPACE_CORE + "httpput", VOSPACE_CORE + "httpsput"}


def job_routes(service: CavernService) -> list[BaseRoute]:
    config, tree, board = service.config, service.tree, service.board

    def signed_in(request: Request) -> str:
        user = service.caller(request)
        if user is None:
            raise VOSpaceFault("PermissionDenied", "anonymous users cannot run jobs")
        return user

    def negotiate(request: Request, user: str, job: Job, transfer: Transfer) -> Transfer:
        """The transfer with endpoints filled in, or a fault if it cannot be done."""
        node = parse_node_uri(transfer.target, config.vos_authority)
        if transfer.direction == "pullFromVoSpace":
            found = tree.info(node)
            if not tree.may_read(user, node):
                raise VOSpaceFault("PermissionDenied", transfer.target)
            if found.is_container:
                raise VOSpaceFault("UnsupportedOperation", "ContainerNode transfer")
            direction, accepted = "get", _GET
        elif transfer.direction == "pushToVoSpace":
            tree.container(node.parent)
            if not tree.may_write(user, node):
                raise VOSpaceFault("PermissionDenied", transfer.target)
            if tree.exists(node) and tree.info(node).is_container:
                raise VOSpaceFault("DuplicateNode", f"{transfer.target} is a container")
            direction, accepted = "put", _PUT
        else:
            raise VOSpaceFault("UnsupportedOperation", f"sync {transfer.direction}")
        grant = Grant(job.id, user, node.path, direction, time.time() + config.preauth_lifetime)
        url = f"{service.base_url(request)}/preauth:{service.sign(grant)}{node.path}"
        asked = [p for p in transfer.protocols if p.uri in accepted]
        if transfer.protocols and not asked:
            raise VOSpaceFault("InvalidArgument", "no supported protocol requested")
        wanted = asked or [Protocol(min(accepted))]
        offered = tuple(Protocol(p.uri, url, p.security_method) for p in wanted)
        return Transfer(transfer.target, transfer.direction, offered, transfer.keep_bytes)

    @handles_faults
    async def synctrans(request: Request) -> Response:
        user = signed_in(request)
        transfer = parse_transfer(await request.body())
        job = board.create(user, "sync", transfer)
        board.set_phase(job, Phase.EXECUTING)
        try:
            job.details = negotiate(request, user, job, transfer)
        except VOSpaceFault as fault:
            board.set_phase(job, Phase.ERROR, fault.text)
        return RedirectResponse(f"{service.base_url(request)}/xfer/{job.id}", 303)

    @handles_faults
    async def xfer(request: Request) -> Response:
        job = board.get(request.path_params["job"], signed_in(request))
        if job.phase is Phase.ERROR and job.error:
            fault, _, detail = job.error.partition(": ")
            raise VOSpaceFault(fault, detail)
        shown = job.details or job.transfer
        if shown is None:
            raise VOSpaceFault("NodeNotFound", f"job {job.id} is not a transfer")
        return Response(transfer_document(shown), media_type="text/xml")

    @handles_faults
    async def create_transfer(request: Request) -> Response:
        job = board.create(signed_in(request), "transfer", parse_transfer(await request.body()))
        return start_if_asked(request, job, "transfers")

    @handles_faults
    async def create_delete(request: Request) -> Response:
        user = signed_in(request)
        form = await form_fields(request)
        target = form.get("target") or request.query_params.get("target") or ""
        job = board.create(user, "delete", target=parse_node_uri(target, config.vos_authority))
        return start_if_asked(request, job, "async-delete")

    def start_if_asked(request: Request, job: Job, collection: str) -> Response:
        if request.query_params.get("PHASE", "").upper() == "RUN":
            board.run(job)
        return RedirectResponse(f"{service.base_url(request)}/{collection}/{job.id}", 303)

    def job_of(request: Request) -> Job:
        return board.get(request.path_params["job"], signed_in(request))

    @handles_faults
    async def job_view(request: Request) -> Response:
        job = job_of(request)
        if request.method == "DELETE":
            board.delete(job)
            return RedirectResponse(f"{service.base_url(request)}/{collection(job)}", 303)
        if request.method == "POST":
            return await phase_change(request)
        wait = request.query_params.get("WAIT")
        expected = request.query_params.get("PHASE")
        if wait and (expected is None or expected.upper() == job.phase.value):
            try:
                seconds = min(float(wait), config.job_wait_max)
            except ValueError:
                raise VOSpaceFault("InvalidArgument", f"WAIT={wait}") from None
            await board.wait(job, seconds if seconds >= 0 else config.job_wait_max)
        url = f"{service.base_url(request)}/{collection(job)}/{job.id}"
        return Response(job_document(job, url), media_type="text/xml")

    def collection(job: Job) -> str:
        return "async-delete" if job.kind == "delete" else "transfers"

    @handles_faults
    async def phase(request: Request) -> Response:
        job = job_of(request)
        if request.method == "POST":
            return await phase_change(request)
        return PlainTextResponse(job.phase.value)

    async def phase_change(request: Request) -> Response:
        job = job_of(request)
        form = await form_fields(request)
        fields = {k.upper(): v.upper() for k, v in form.items()}
        if fields.get("ACTION") == "DELETE":
            board.delete(job)
        elif fields.get("PHASE") == "RUN":
            board.run(job)
        elif fields.get("PHASE") == "ABORT":
            board.abort(job)
        elif fields:
            raise VOSpaceFault("InvalidArgument", f"unknown phase change {form}")
        return RedirectResponse(f"{service.base_url(request)}/{collection(job)}/{job.id}", 303)

    @handles_faults
    async def error(request: Request) -> Response:
        job = job_of(request)
        return PlainTextResponse(job.error or "", status_code=200 if job.error else 404)

    @handles_faults
    async def details(request: Request) -> Response:
        job = job_of(request)
        if job.transfer is None:
            raise VOSpaceFault("NodeNotFound", "no transfer details")
        return Response(transfer_document(job.details or job.transfer), media_type="text/xml")

    routes: list[BaseRoute] = [
        Route("/synctrans", synctrans, methods=["POST"]),
        Route("/xfer/{job}", xfer, methods=["GET"]),
        Route("/transfers", create_transfer, methods=["POST"]),
        Route("/async-delete", create_delete, methods=["POST"]),
        Route("/transfers/{job}/results/transferDetails", details, methods=["GET"]),
    ]
    for name in ("transfers", "async-delete"):
        routes += [
            Route(f"/{name}/{{job}}", job_view, methods=["GET", "POST", "DELETE"]),
            Route(f"/{name}/{{job}}/phase", phase, methods=["GET", "POST"]),
            Route(f"/{name}/{{job}}/error", error, methods=["GET"]),
        ]
    return routes
