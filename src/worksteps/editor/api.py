"""The Workstep Editor's HTTP API: an ``APIRouter`` the gateway mounts, and the routes' rules.

Every route but ``/health`` and ``/template-files/…`` needs a bearer token. Worksteps are JSON;
``GET /worksteps/{uuid}/request`` also speaks YAML and XML. A workstep answer carries its
version as the ETag; every change names the version it is based on (``If-Match``, or
``version`` in the body) and a stale one is 409, a missing one 428.

No ``from __future__ import annotations`` here: FastAPI must see the dependency objects.
"""

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from worksteps.core.auth import Authenticator, Principal, TokenVerifier
from worksteps.core.database import Database
from worksteps.core.docs import docs_app_options, install_docs
from worksteps.core.errors import BadRequest, InvalidInput, NotFound, install_problem_handlers
from worksteps.core.openapi import document_problems
from worksteps.core.serving import freeze_start_up
from worksteps.editor import edits
from worksteps.editor.bodies import (
    AddData,
    CreateEmpty,
    CreateFromData,
    CreateFromTemplate,
    CreateFromUrl,
    PreconditionRequired,
    SetCompute,
    SetData,
    SetDetails,
    SetExecutable,
    SetStorage,
)
from worksteps.editor.fetch import Fetcher
from worksteps.editor.model import Workstep
from worksteps.editor.service import EditorService
from worksteps.editor.settings import EditorSettings
from worksteps.editor.store import WorkstepStore
from worksteps.editor.templates import FILES, Catalogue
from worksteps.schema.codecs import MediaType, encode, negotiate
from worksteps.schema.isotime import format_instant

__all__ = ["create_app", "editor_router", "editor_url"]

Authenticate = Callable[[Request], Awaitable[Principal]]


_REQUEST_ANSWER: dict[str, Any] = {
    "description": "The workstep as an IVOA ExecutionRequest, in the format `Accept` asks for.",
    "content": {media.value: {"schema": {"type": "object"}} for media in MediaType},
}
_ETAG = re.compile(r'\s*(?:W/)?"?([0-9]{1,9})"?\s*')
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _based_on(if_match: str | None, version: int | None) -> int | None:
    """The version a change is based on: If-Match and/or ``version``; ``*`` means any."""
    header: int | None = None
    if if_match is not None and if_match.strip() != "*":
        match = _ETAG.fullmatch(if_match.split(",")[0])
        if match is None:
            raise BadRequest(f"If-Match {if_match[:40]!r} is not a workstep version.")
        header = int(match[1])
    if header is not None and version is not None and header != version:
        raise BadRequest("If-Match and version name different versions.", reason="version-mismatch")
    if header is None and version is None and if_match is None:
        raise PreconditionRequired(
            "Name the version this change is based on (If-Match or version).",
            reason="version-required",
        )
    return header if header is not None else version


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(
            f"There is no workstep {text[:40]!r}.", reason="workstep-not-found"
        ) from None


def editor_url(request: Request, public_url: str | None) -> str:
    """The editor's base URL as callers see it (mount prefix included)."""
    if public_url:
        return public_url.rstrip("/")
    return str(request.url_for("list_worksteps")).removesuffix("/worksteps")


def editor_router(service: EditorService, authenticate: Authenticate) -> APIRouter:
    """The editor's routes, ready to mount (``app.include_router(router, prefix=…)``)."""
    router = APIRouter()
    Caller = Annotated[Principal, Depends(authenticate)]  # noqa: N806
    IfMatch = Annotated[str | None, Header()]  # noqa: N806

    def base(request: Request) -> str:
        return editor_url(request, service.settings.public_url)

    def render(request: Request, workstep: Workstep) -> dict[str, Any]:
        link = f"{base(request)}/worksteps/{workstep.uuid}"
        body = workstep.model_dump(mode="json", exclude_none=True)
        for key in ("name", "description", "executable", "compute", "schedule"):
            body.setdefault(key, None)  # the top-level parts are always named
        body["ready"] = workstep.ready
        body["links"] = {
            "self": link,
            "version": f"{link}/versions/{workstep.version}",
            "versions": f"{link}/versions",
            "request": f"{link}/request",
        }
        return body

    def answer(request: Request, workstep: Workstep, status: int = 200) -> JSONResponse:
        headers = {"ETag": f'"{workstep.version}"'}
        if status == 201:
            headers["Location"] = f"{base(request)}/worksteps/{workstep.uuid}"
        return JSONResponse(render(request, workstep), status_code=status, headers=headers)

    @router.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/template-files/{name}", tags=["templates"])
    async def template_file(name: str) -> FileResponse:
        path = FILES / name
        if not _FILE_NAME.fullmatch(name) or not path.is_file():
            raise NotFound(f"There is no template file {name[:80]!r}.")
        return FileResponse(path)

    @router.get("/templates", tags=["templates"])
    async def list_templates(request: Request, principal: Caller) -> dict[str, Any]:
        registry, url = service.settings.image_registry, base(request)
        return {
            "templates": [t.summary(registry=registry, editor_url=url) for t in service.catalogue]
        }

    @router.get("/templates/{name}", tags=["templates"])
    async def get_template(request: Request, name: str, principal: Caller) -> dict[str, Any]:
        try:
            template = service.catalogue.get(name, field="name")
        except InvalidInput:
            raise NotFound(
                f"There is no template {name[:64]!r}.", reason="template-not-found"
            ) from None
        return template.summary(registry=service.settings.image_registry, editor_url=base(request))

    @router.get("/worksteps", tags=["worksteps"], name="list_worksteps")
    async def list_worksteps(
        request: Request,
        principal: Caller,
        owner: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    ) -> dict[str, Any]:
        found = await service.list_worksteps(principal, owner=owner, limit=limit, offset=offset)
        return {"worksteps": [render(request, w) for w in found]}

    @router.post("/worksteps", tags=["create"], status_code=201)
    async def create_empty(request: Request, body: CreateEmpty, principal: Caller) -> JSONResponse:
        workstep = await service.create_empty(principal, name=body.name, request=body.request)
        return answer(request, workstep, 201)

    @router.post("/worksteps/from-data", tags=["create"], status_code=201)
    async def create_from_data(
        request: Request, body: CreateFromData, principal: Caller
    ) -> JSONResponse:
        workstep = await service.create_from_data(principal, body.references, name=body.name)
        return answer(request, workstep, 201)

    @router.post("/worksteps/from-template", tags=["create"], status_code=201)
    async def create_from_template(
        request: Request, body: CreateFromTemplate, principal: Caller
    ) -> JSONResponse:
        workstep = await service.create_from_template(
            principal, body.template, editor_url=base(request), name=body.name
        )
        return answer(request, workstep, 201)

    @router.post("/worksteps/from-discovery", tags=["create"], status_code=201)
    async def create_from_discovery(
        request: Request, body: CreateFromUrl, principal: Caller
    ) -> JSONResponse:
        workstep = await service.create_from_discovery(principal, body.url, name=body.name)
        return answer(request, workstep, 201)

    @router.post("/worksteps/from-history", tags=["create"], status_code=201)
    async def create_from_history(
        request: Request, body: CreateFromUrl, principal: Caller
    ) -> JSONResponse:
        workstep = await service.create_from_history(
            principal, body.url, editor_url=base(request), name=body.name
        )
        return answer(request, workstep, 201)

    @router.post("/worksteps/from-provenance", tags=["create"], status_code=201)
    async def create_from_provenance(
        request: Request, body: CreateFromUrl, principal: Caller
    ) -> JSONResponse:
        workstep = await service.create_from_provenance(principal, body.url, name=body.name)
        return answer(request, workstep, 201)

    @router.get("/worksteps/{uuid}", tags=["worksteps"], name="get_workstep")
    async def get_workstep(request: Request, uuid: str, principal: Caller) -> JSONResponse:
        return answer(request, await service.get(principal, _uuid(uuid)))

    @router.get(
        "/worksteps/{uuid}/request",
        tags=["worksteps"],
        response_class=Response,
        responses={200: _REQUEST_ANSWER},
    )
    async def get_request(
        uuid: str, principal: Caller, accept: Annotated[str | None, Header()] = None
    ) -> Response:
        workstep = await service.get(principal, _uuid(uuid))
        media = negotiate(accept, MediaType.JSON) if accept else MediaType.JSON
        document = workstep.to_request().model_dump(mode="json", exclude_none=True)
        return Response(
            encode(document, media, "execution-request"),
            media_type=media.value,
            headers={"ETag": f'"{workstep.version}"'},
        )

    @router.get("/worksteps/{uuid}/versions", tags=["worksteps"])
    async def list_versions(request: Request, uuid: str, principal: Caller) -> dict[str, Any]:
        history = await service.versions(principal, _uuid(uuid))
        link = f"{base(request)}/worksteps/{uuid}/versions"
        return {
            "versions": [
                {
                    "version": v.version,
                    "created": format_instant(v.created),
                    "author": v.author,
                    "change": v.change,
                    "url": f"{link}/{v.version}",
                }
                for v in history
            ]
        }

    @router.get("/worksteps/{uuid}/versions/{version}", tags=["worksteps"])
    async def get_version(
        request: Request,
        uuid: str,
        version: Annotated[int, Path(ge=1, le=10**9)],
        principal: Caller,
    ) -> JSONResponse:
        return answer(request, await service.get(principal, _uuid(uuid), version))

    async def change(
        request: Request,
        principal: Principal,
        uuid: str,
        based_on: int | None,
        what: str,
        edit: edits.Edit,
    ) -> JSONResponse:
        workstep = await service.edit(principal, _uuid(uuid), based_on, what, edit)
        return answer(request, workstep)

    @router.put("/worksteps/{uuid}/executable", tags=["edit"])
    async def set_executable(
        request: Request,
        uuid: str,
        body: SetExecutable,
        principal: Caller,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        based_on = _based_on(if_match, body.version)
        edit = edits.set_executable(body.executable)
        return await change(request, principal, uuid, based_on, "set-executable", edit)

    @router.put("/worksteps/{uuid}/compute", tags=["edit"])
    async def set_compute(
        request: Request, uuid: str, body: SetCompute, principal: Caller, if_match: IfMatch = None
    ) -> JSONResponse:
        based_on = _based_on(if_match, body.version)
        edit = edits.set_compute(body.compute)
        return await change(request, principal, uuid, based_on, "set-compute", edit)

    @router.put("/worksteps/{uuid}/data", tags=["edit"])
    async def set_data(
        request: Request, uuid: str, body: SetData, principal: Caller, if_match: IfMatch = None
    ) -> JSONResponse:
        based_on = _based_on(if_match, body.version)
        edit = edits.set_data(body.data)
        return await change(request, principal, uuid, based_on, "set-data", edit)

    @router.post("/worksteps/{uuid}/data", tags=["edit"])
    async def add_data(
        request: Request, uuid: str, body: AddData, principal: Caller, if_match: IfMatch = None
    ) -> JSONResponse:
        based_on = _based_on(if_match, body.version)
        edit = service.add_data(principal, body.references)
        return await change(request, principal, uuid, based_on, "add-data", edit)

    @router.delete("/worksteps/{uuid}/data/{name}", tags=["edit"])
    async def remove_data(
        request: Request,
        uuid: str,
        name: str,
        principal: Caller,
        if_match: IfMatch = None,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> JSONResponse:
        based_on = _based_on(if_match, version)
        return await change(
            request, principal, uuid, based_on, "remove-data", edits.remove_data(name)
        )

    @router.put("/worksteps/{uuid}/storage", tags=["edit"])
    async def set_storage(
        request: Request, uuid: str, body: SetStorage, principal: Caller, if_match: IfMatch = None
    ) -> JSONResponse:
        based_on = _based_on(if_match, body.version)
        edit = edits.set_storage(body.storage)
        return await change(request, principal, uuid, based_on, "set-storage", edit)

    @router.patch("/worksteps/{uuid}", tags=["edit"])
    async def set_details(
        request: Request, uuid: str, body: SetDetails, principal: Caller, if_match: IfMatch = None
    ) -> JSONResponse:
        based_on = _based_on(if_match, body.version)
        edit = edits.set_details(body.model_dump(exclude_unset=True, exclude={"version"}))
        return await change(request, principal, uuid, based_on, "set-details", edit)

    @router.delete("/worksteps/{uuid}", tags=["worksteps"], status_code=204)
    async def delete_workstep(
        uuid: str,
        principal: Caller,
        if_match: IfMatch = None,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> Response:
        based_on = _based_on(if_match, version) if (if_match or version) else None
        await service.delete(principal, _uuid(uuid), based_on)
        return Response(status_code=204)

    return router


def create_app(settings: EditorSettings | None = None) -> FastAPI:
    """The editor as its own service (``worksteps serve editor``): migrates on start-up."""
    settings = settings or EditorSettings()  # auth comes from the environment
    catalogue = Catalogue.load(settings.templates_path)  # a broken catalogue stops start-up
    url = settings.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        FilePath(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    database = Database(url)
    service = EditorService(settings, WorkstepStore(database), Fetcher(settings.fetch), catalogue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        freeze_start_up()
        try:
            yield
        finally:
            await service.aclose()
            await database.dispose()

    app = FastAPI(
        title="Worksteps Workstep Editor",
        version="1.0",
        summary="Create worksteps six ways, edit them with versions, turn them into IVOA "
        "ExecutionRequests.",
        lifespan=lifespan,
        **docs_app_options(),
    )
    install_docs(app)
    install_problem_handlers(app)
    document_problems(app)
    app.state.editor = service
    authenticate = Authenticator(TokenVerifier(settings.auth))
    app.include_router(editor_router(service, authenticate))
    return app
