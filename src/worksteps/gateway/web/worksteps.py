"""The Workstep Editor's pages: the list, the six ways to create, the four edit forms, execute.

Forms post to the page they came from; a refused change is shown again with the user's input
and each error beside its field (HTTP 422), a change made meanwhile elsewhere is a 409 with the
current version, and nothing is saved unless the editor accepted all of it. Every change names
the version it was made on (a hidden field), so two windows cannot overwrite each other.
"""

from __future__ import annotations

import shlex
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from worksteps.core.auth import Principal
from worksteps.core.errors import Conflict, FieldError, InvalidInput, NotFound
from worksteps.editor import edits
from worksteps.editor.model import Workstep
from worksteps.editor.service import EditorService
from worksteps.execution.service import ExecutionService
from worksteps.gateway.web.forms import FieldErrors, drop_empty, form_data, integer, lines, words
from worksteps.gateway.web.guards import signed_in
from worksteps.gateway.web.state import gateway_state
from worksteps.schema.kinds import COMPUTE_SIMPLE, EXEC_DOCKER, EXEC_JUPYTER, STORAGE_SIMPLE

__all__ = ["CREATION_MODES", "workstep_pages"]

SignedIn = Annotated[Principal, Depends(signed_in)]

CREATION_MODES = ("empty", "data", "template", "discovery", "history", "provenance")
_MODE_INPUTS = {
    "empty": ["name"],
    "data": ["references", "name"],
    "template": ["template", "name"],
    "discovery": ["url", "name"],
    "history": ["url", "name"],
    "provenance": ["url", "name"],
}
_EXECUTABLE_INPUTS = [
    "executable.kind",
    "executable.image.locations.0",
    "executable.command",
    "executable.location",
]


def _workstep_uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound("There is no such workstep.", reason="workstep-not-found") from None


def _dump(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    dumped: dict[str, Any] = value.model_dump(mode="json", exclude_none=True)
    return dumped


def _values(ws: Workstep) -> dict[str, str]:
    """The edit forms' fields, filled from the workstep."""
    values: dict[str, str] = {}
    executable = _dump(ws.executable)
    kind = str(executable.get("kind", ""))
    values["executable.kind"] = kind
    values["executable.image.locations.0"] = next(
        iter((executable.get("image") or {}).get("locations") or []), ""
    )
    values["executable.command"] = shlex.join(executable.get("command") or [])
    values["executable.location"] = str(executable.get("location") or "")
    compute = _dump(ws.compute)
    for part in ("cores", "memory"):
        for end in ("min", "max"):
            found = (compute.get(part) or {}).get(end)
            values[f"compute.{part}.{end}"] = "" if found is None else str(found)
    for index, storage in enumerate(ws.storage):
        size = _dump(storage).get("size") or {}
        for end in ("min", "max"):
            values[f"storage.{index}.size.{end}"] = str(size.get(end, ""))
    return values


def _short_kind(kind: str) -> str:
    return kind.rsplit("/", 1)[-1].removesuffix(".yaml")


def _data_rows(ws: Workstep) -> list[dict[str, str]]:
    """Each data resource as the page lists it: name, kind, what it points at, its storage."""
    rows = []
    for resource in ws.data:
        doc = _dump(resource)
        rucio, ivoa = doc.get("rucio") or {}, doc.get("ivoa") or {}
        target = (
            (f"{rucio.get('scope')}:{rucio.get('object')}" if rucio else "")
            or doc.get("location")
            or ivoa.get("ivoid")
            or "/".join(str(doc[k]) for k in ("bucket", "object") if doc.get(k))
        )
        rows.append(
            {
                "name": str((doc.get("meta") or {}).get("name") or ""),
                "kind": _short_kind(str(doc.get("kind", ""))),
                "target": str(target or ""),
                "storage": str(doc.get("storage") or ""),
            }
        )
    return rows


def _storage_names(ws: Workstep) -> list[str]:
    return [str((_dump(s).get("meta") or {}).get("name") or "") for s in ws.storage]


def _range(form: dict[str, str], path: str, errors: list[FieldError]) -> dict[str, int] | None:
    ends = {end: integer(form, f"{path}.{end}", errors) for end in ("min", "max")}
    chosen = {end: value for end, value in ends.items() if value is not None}
    return chosen or None


def _executable(ws: Workstep, form: dict[str, str]) -> dict[str, Any] | None:
    errors: list[FieldError] = []
    kind = form.get("executable.kind", "")
    current = _dump(ws.executable)
    if not kind:
        return None
    if kind not in (EXEC_DOCKER, EXEC_JUPYTER):
        errors.append(FieldError("executable.kind", "choose a container or a notebook"))
    base: dict[str, Any] = current if current.get("kind") == kind else {"kind": kind}
    if kind == EXEC_DOCKER:
        image = form.get("executable.image.locations.0", "")
        base["image"] = {**(base.get("image") or {}), "locations": [image] if image else None}
        base["command"] = words(form.get("executable.command", ""), "executable.command", errors)
    elif kind == EXEC_JUPYTER:
        base["location"] = form.get("executable.location", "")
    if errors:
        raise InvalidInput("The executable is not valid.", errors)
    result: dict[str, Any] = drop_empty(base)
    return result


def _compute(ws: Workstep, form: dict[str, str]) -> dict[str, Any]:
    errors: list[FieldError] = []
    base = _dump(ws.compute) or {"kind": COMPUTE_SIMPLE}
    for part in ("cores", "memory"):
        base[part] = _range(form, f"compute.{part}", errors)
    if errors:
        raise InvalidInput("The compute resources are not valid.", errors)
    result: dict[str, Any] = drop_empty(base)
    return result


def _storage(ws: Workstep, form: dict[str, str]) -> list[dict[str, Any]]:
    errors: list[FieldError] = []
    kept: list[dict[str, Any]] = []
    for index, storage in enumerate(ws.storage):
        if form.get(f"storage.{index}.remove"):
            continue
        base = _dump(storage)
        base["size"] = _range(form, f"storage.{index}.size", errors)
        kept.append(drop_empty(base))
    new = len(ws.storage)
    name = form.get(f"storage.{new}.meta.name", "")
    size = _range(form, f"storage.{new}.size", errors)
    if name or size:
        kept.append(drop_empty({"kind": STORAGE_SIMPLE, "meta": {"name": name}, "size": size}))
    if errors:
        raise InvalidInput("The storage is not valid.", errors)
    return kept


def _storage_inputs(ws: Workstep) -> list[str]:
    inputs = []
    for index in range(len(ws.storage) + 1):
        inputs += [f"storage.{index}.size.min", f"storage.{index}.size.max"]
    inputs.append(f"storage.{len(ws.storage)}.meta.name")
    return inputs


def workstep_pages(
    editor: EditorService, execution: ExecutionService | None, *, editor_url: str
) -> APIRouter:
    """The pages; ``editor_url`` is where the editor's API is reached (``{gateway}/api``)."""
    router = APIRouter(include_in_schema=False)

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return gateway_state(request).pages.render(request, name, status=status, **context)

    @router.get("/worksteps", name="worksteps")
    async def list_worksteps(request: Request, user: SignedIn) -> Response:
        found = await editor.list_worksteps(user, limit=200)
        return render(request, "worksteps/list.html", worksteps=found)

    def new_page(
        request: Request, mode: str, errors: FieldErrors | None, form: dict[str, str], status: int
    ) -> Response:
        return render(
            request,
            "worksteps/new.html",
            status,
            modes=CREATION_MODES,
            mode=mode,
            errors=errors,
            form=form,
            templates=[(t.name, t.title) for t in editor.catalogue],
        )

    @router.get("/worksteps/new", name="new_workstep")
    async def new_workstep(
        request: Request, user: SignedIn, mode: str = "", url: str = ""
    ) -> Response:
        return new_page(request, mode, None, {"url": url} if url else {}, 200)

    @router.post("/worksteps/new", name="create_workstep")
    async def create_workstep(request: Request, user: SignedIn) -> Response:
        form = await form_data(request)
        mode, name = form.get("mode", ""), form.get("name") or None
        url = form.get("url", "")
        try:
            if mode == "empty":
                made = await editor.create_empty(user, name=name)
            elif mode == "data":
                references = lines(form.get("references", ""))
                made = await editor.create_from_data(user, references, name=name)
            elif mode == "template":
                template = form.get("template", "")
                made = await editor.create_from_template(
                    user, template, editor_url=editor_url, name=name
                )
            elif mode == "discovery":
                made = await editor.create_from_discovery(user, url, name=name)
            elif mode == "history":
                made = await editor.create_from_history(user, url, editor_url=editor_url, name=name)
            elif mode == "provenance":
                made = await editor.create_from_provenance(user, url, name=name)
            else:
                raise InvalidInput("Choose how to create the workstep.", [])
        except InvalidInput as exc:
            inputs = _MODE_INPUTS.get(mode, [])
            return new_page(request, mode, FieldErrors.of(exc, inputs), form, 422)
        return RedirectResponse(request.url_for("workstep", uuid=made.uuid).path, 303)

    async def edit_page(
        request: Request,
        user: Principal,
        ws: Workstep,
        *,
        failed: str | None = None,
        errors: FieldErrors | None = None,
        submitted: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        values = _values(ws) | (submitted or {})
        return render(
            request,
            "worksteps/edit.html",
            status,
            ws=ws,
            versions=await editor.versions(user, ws.uuid),
            values=values,
            failed=failed,
            errors=errors,
            kinds=[("", "None"), (EXEC_DOCKER, "Container image"), (EXEC_JUPYTER, "Notebook")],
            data_rows=_data_rows(ws),
            storage_names=_storage_names(ws),
            can_execute=execution is not None,
            api=f"{editor_url}/worksteps/{ws.uuid}",
        )

    @router.get("/worksteps/{uuid}", name="workstep")
    async def show_workstep(request: Request, uuid: str, user: SignedIn) -> Response:
        return await edit_page(request, user, await editor.get(user, _workstep_uuid(uuid)))

    async def change(request: Request, user: Principal, uuid: str, part: str) -> Response:
        """Apply one of the four edit forms (``part``) to the version the form was made on."""
        ws = await editor.get(user, _workstep_uuid(uuid))
        form = await form_data(request)
        inputs = {
            "executable": _EXECUTABLE_INPUTS,
            "compute": [f"compute.{p}.{e}" for p in ("cores", "memory") for e in ("min", "max")],
            "storage": _storage_inputs(ws),
            "data": ["references"],
        }[part]
        try:
            based_on = int(form.get("version", ""))
        except ValueError:
            based_on = ws.version
        try:
            if part == "executable":
                edit = edits.set_executable(_executable(ws, form))
            elif part == "compute":
                edit = edits.set_compute(_compute(ws, form))
            elif part == "storage":
                edit = edits.set_storage(_storage(ws, form))
            elif form.get("remove"):
                edit = edits.remove_data(form["remove"])
            else:
                references = lines(form.get("references", ""))
                if not references:
                    raise InvalidInput(
                        "Name the data to add.", [FieldError("references", "is empty")]
                    )
                edit = editor.add_data(user, references)
            await editor.edit(user, ws.uuid, based_on, f"set-{part}", edit)
        except InvalidInput as exc:
            errors = FieldErrors.of(exc, inputs)
            return await edit_page(
                request, user, ws, failed=part, errors=errors, submitted=form, status=422
            )
        except Conflict as exc:
            errors = FieldErrors([], exc.detail)
            latest = await editor.get(user, ws.uuid)
            return await edit_page(request, user, latest, failed=part, errors=errors, status=409)
        target = request.url_for("workstep", uuid=ws.uuid).path
        return RedirectResponse(f"{target}#{part}", 303)

    def edit_route(part: str) -> Any:
        async def post_part(request: Request, uuid: str, user: SignedIn) -> Response:
            return await change(request, user, uuid, part)

        return post_part

    for part in ("executable", "compute", "storage", "data"):
        router.add_api_route(
            f"/worksteps/{{uuid}}/{part}", edit_route(part), methods=["POST"], name=f"edit_{part}"
        )

    @router.post("/worksteps/{uuid}/execute", name="execute_workstep")
    async def execute_workstep(request: Request, uuid: str, user: SignedIn) -> Response:
        ws = await editor.get(user, _workstep_uuid(uuid))
        if execution is None:
            raise NotFound("This gateway has no execution service.", reason="no-execution")
        body = {
            "request": ws.to_request().model_dump(mode="json", exclude_none=True),
            "workstep": {"uuid": str(ws.uuid), "version": ws.version, "name": ws.name},
        }
        try:
            record = await execution.execute(user, body)
        except InvalidInput as exc:
            errors = FieldErrors.of(exc, [])
            return await edit_page(request, user, ws, failed="execute", errors=errors, status=422)
        return RedirectResponse(request.url_for("execution", execution_id=record.id).path, 303)

    return router
