"""The execution pages: offers compared, one selected, the preparation followed, the history.

    GET  /executions                       history: every execution, run again, re-create
    GET  /executions/{id}                  offers table (or the session's live preparation)
    POST /executions/{id}/select           take one offer (the others are rejected)
    POST /executions/{id}/cancel           withdraw the offers, or cancel the session
    POST /executions/{id}/again            execute the same request again
    POST /executions/{id}/recreate         a new workstep from the session's provenance

The page shows what the execution service says (:func:`execution_view`, the JSON API's view);
a refused selection (expired offer, site said no) is shown on the page with the offers left.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from worksteps.core.auth import Principal
from worksteps.core.clock import utcnow
from worksteps.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from worksteps.editor.service import EditorService
from worksteps.execution.service import ExecutionService
from worksteps.execution.views import execution_view, summary_view
from worksteps.gateway.web.forms import form_data
from worksteps.gateway.web.guards import signed_in
from worksteps.gateway.web.state import gateway_state

__all__ = ["execution_pages"]

SignedIn = Annotated[Principal, Depends(signed_in)]
_LIVE = frozenset({"ACCEPTED", "WAITING", "PREPARING"})  # not yet ready: follow it


def _execution_id(text: str) -> str:
    if len(text) > 64 or not all(c.isalnum() or c == "-" for c in text):
        raise NotFound("There is no such execution.", reason="execution-not-found")
    return text


def execution_pages(
    execution: ExecutionService, editor: EditorService | None, *, api_url: str
) -> APIRouter:
    """The pages; ``api_url`` is where the execution API is reached (``{gateway}/api``)."""
    router = APIRouter(include_in_schema=False)

    async def show(
        request: Request,
        user: Principal,
        execution_id: str,
        *,
        problem: str | None = None,
        status: int = 200,
    ) -> Response:
        record, relay_error = await execution.get(user, _execution_id(execution_id))
        view = execution_view(record, utcnow(), relay_error)
        session = view.get("session") or {}
        return gateway_state(request).pages.render(
            request,
            "executions/show.html",
            status=status,
            execution=view,
            problem=problem,
            live=record.state == "selected" and (session.get("phase") or "") in _LIVE,
            events=f"{api_url}/executions/{record.id}/events",
            provenance=f"{api_url}/executions/{record.id}/provenance",
            can_recreate=editor is not None,
        )

    @router.get("/executions", name="executions")
    async def history(request: Request, user: SignedIn) -> Response:
        records = await execution.executions(user, 200)
        return gateway_state(request).pages.render(
            request,
            "executions/list.html",
            executions=[summary_view(r, utcnow()) for r in records],
            can_recreate=editor is not None,
        )

    @router.get("/executions/{execution_id}", name="execution")
    async def show_execution(request: Request, execution_id: str, user: SignedIn) -> Response:
        return await show(request, user, execution_id)

    def back(request: Request, execution_id: str) -> RedirectResponse:
        return RedirectResponse(request.url_for("execution", execution_id=execution_id).path, 303)

    @router.post("/executions/{execution_id}/select", name="offer_select")
    async def select_offer(request: Request, execution_id: str, user: SignedIn) -> Response:
        offer = (await form_data(request)).get("offer", "")
        try:
            await execution.select(user, _execution_id(execution_id), offer)
        except (Conflict, InvalidInput, Unavailable) as exc:
            return await show(request, user, execution_id, problem=exc.detail, status=exc.status)
        return back(request, execution_id)

    @router.post("/executions/{execution_id}/cancel", name="execution_cancel")
    async def cancel_execution(request: Request, execution_id: str, user: SignedIn) -> Response:
        try:
            await execution.cancel(user, _execution_id(execution_id))
        except (Conflict, Unavailable) as exc:
            return await show(request, user, execution_id, problem=exc.detail, status=exc.status)
        return back(request, execution_id)

    @router.post("/executions/{execution_id}/again", name="execution_again")
    async def run_again(request: Request, execution_id: str, user: SignedIn) -> Response:
        record, _ = await execution.get(user, _execution_id(execution_id))
        body: dict[str, Any] = {"request": record.request}
        if record.workstep:
            body["workstep"] = {k: v for k, v in record.workstep.items() if k != "url"}
        try:
            again = await execution.execute(user, body)
        except (InvalidInput, Unavailable) as exc:
            return await show(request, user, execution_id, problem=exc.detail, status=exc.status)
        return back(request, again.id)

    @router.post("/executions/{execution_id}/recreate", name="execution_recreate")
    async def recreate(request: Request, execution_id: str, user: SignedIn) -> Response:
        if editor is None:
            raise NotFound("This gateway has no workstep editor.", reason="no-editor")
        record, _ = await execution.get(user, _execution_id(execution_id))
        url = f"{api_url}/executions/{record.id}/provenance"
        try:
            made = await editor.create_from_provenance(user, url)
        except (InvalidInput, Unavailable) as exc:
            return await show(request, user, execution_id, problem=exc.detail, status=exc.status)
        return RedirectResponse(request.url_for("workstep", uuid=made.uuid).path, 303)

    return router
