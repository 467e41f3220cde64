"""Harbor REST API v2.0 (``/api/v2.0``): projects, repositories, artifacts and registries.

Only what a site adapter and Skaha's image cache use is served, with Harbor's field names,
paging and errors (replication lives in :mod:`.replication_api`). A repository name that
contains ``/`` must be URL-encoded twice in the path (``a%252Fb``), as Harbor requires.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from worksteps.emulators.harbor.auth import Accounts, Principal
from worksteps.emulators.harbor.replication import UPSTREAM_ID
from worksteps.emulators.harbor.state import Project, RegistryState, StoredImage
from worksteps.emulators.harbor.wire import error, iso, page

__all__ = ["rest_routes"]

PREFIX = "/api/v2.0"


def _query(request: Request) -> dict[str, tuple[bool, str]]:
    """Harbor's ``q=k=v,k2=~v2`` (``=~`` is a fuzzy match): key -> (fuzzy, value)."""
    found: dict[str, tuple[bool, str]] = {}
    for part in request.query_params.get("q", "").split(","):
        key, sep, value = part.partition("=")
        if sep:
            fuzzy = value.startswith("~")
            found[key.strip()] = (fuzzy, value[1:] if fuzzy else value)
    return found


def _matches(query: dict[str, tuple[bool, str]], key: str, actual: str | list[str]) -> bool:
    if key not in query:
        return True
    fuzzy, wanted = query[key]
    values = actual if isinstance(actual, list) else [actual]
    return any((wanted in v) if fuzzy else (wanted == v) for v in values)


class RestApi:
    """Handlers over one registry state; each checks who asks before answering."""

    def __init__(self, state: RegistryState, accounts: Accounts) -> None:
        self.state = state
        self.accounts = accounts

    # -- who is asking -------------------------------------------------------------------
    def _principal(self, request: Request) -> Principal | Response:
        principal = self.accounts.authenticate(request.headers.get("authorization"))
        if principal is None:
            return error(401, "UNAUTHORIZED", "unauthorized: invalid credentials")
        return principal

    def admin(self, request: Request) -> Principal | Response:
        principal = self._principal(request)
        if isinstance(principal, Principal) and not principal.admin:
            if principal.anonymous:
                return error(401, "UNAUTHORIZED", "unauthorized")
            return error(403, "FORBIDDEN", "forbidden: system administrator required")
        return principal

    def _project(self, request: Request) -> tuple[Principal, Project] | Response:
        principal = self._principal(request)
        if not isinstance(principal, Principal):
            return principal
        key = request.path_params["project"]
        if request.headers.get("x-is-resource-name", "").lower() == "true":
            project = self.state.projects.get(key)
        else:
            project = self.state.project(key)
        if project is None:
            return error(404, "NOT_FOUND", f"project {key} not found")
        if not self.accounts.can_read(principal, project.spec):
            if principal.anonymous:
                return error(401, "UNAUTHORIZED", "unauthorized")
            return error(403, "FORBIDDEN", f"forbidden to access project {key}")
        return principal, project

    # -- service ---------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        names = ["core", "database", "jobservice", "portal", "redis", "registry", "registryctl"]
        components = [{"name": n, "status": "healthy"} for n in names]
        return JSONResponse({"status": "healthy", "components": components})

    async def systeminfo(self, request: Request) -> Response:
        return JSONResponse(
            {
                "harbor_version": "v2.11.0-worksteps-emulator",
                "auth_mode": "db_auth",
                "external_url": str(request.base_url).rstrip("/"),
                "registry_url": request.url.netloc,
                "project_creation_restriction": "adminonly",
                "self_registration": False,
                "has_ca_root": False,
                "read_only": False,
                "with_chartmuseum": False,
                "notification_enable": True,
            }
        )

    # -- projects and repositories -------------------------------------------------------
    def _project_json(self, project: Project) -> dict[str, Any]:
        repos = self.state.repositories(project.spec.name)
        return {
            "project_id": project.id,
            "name": project.spec.name,
            "owner_id": 1,
            "owner_name": "admin",
            "registry_id": None,
            "creation_time": iso(project.created),
            "update_time": iso(project.created),
            "deleted": False,
            "repo_count": len(repos),
            "metadata": {"public": "true" if project.spec.public else "false"},
        }

    async def projects(self, request: Request) -> Response:
        principal = self._principal(request)
        if not isinstance(principal, Principal):
            return principal
        query = _query(request)
        name = request.query_params.get("name")
        public = request.query_params.get("public")
        found = [
            self._project_json(p)
            for p in self.state.projects.values()
            if self.accounts.can_read(principal, p.spec)
            and _matches(query, "name", p.spec.name)
            and (name is None or name == p.spec.name)
            and (public is None or (public.lower() == "true") == p.spec.public)
        ]
        return self.paged(request, found)

    async def project(self, request: Request) -> Response:
        found = self._project(request)
        if not isinstance(found, tuple):
            return found
        return JSONResponse(self._project_json(found[1]))

    def _repository_json(
        self, project: Project, name: str, images: list[StoredImage]
    ) -> dict[str, Any]:
        now = self.state.clock()
        pushed = [t for t in (i.pushed_at(now) for i in images) if t is not None]
        pulls = [i.pulled_at for i in images if i.pulled_at is not None]
        return {
            "id": self.state.repository_ids[name],
            "project_id": project.id,
            "name": name,
            "description": "",
            "artifact_count": len(self.state.artifacts(name)),
            "pull_count": len(pulls),
            "creation_time": iso(min(pushed)),
            "update_time": iso(max(pushed + pulls)),
        }

    async def repositories(self, request: Request) -> Response:
        found = self._project(request)
        if not isinstance(found, tuple):
            return found
        project = found[1]
        query = _query(request)
        repos = [
            self._repository_json(project, name, images)
            for name, images in self.state.repositories(project.spec.name).items()
            if _matches(query, "name", name)
        ]
        return self.paged(request, repos)

    def _repository_name(self, request: Request, project: Project) -> str:
        return f"{project.spec.name}/{unquote(request.path_params['repository'])}"

    async def repository(self, request: Request) -> Response:
        found = self._project(request)
        if not isinstance(found, tuple):
            return found
        name = self._repository_name(request, found[1])
        images = self.state.repositories(found[1].spec.name).get(name)
        if not images:
            return error(404, "NOT_FOUND", f"repository {name} not found")
        return JSONResponse(self._repository_json(found[1], name, images))

    # -- artifacts -----------------------------------------------------------------------
    def _artifact_json(
        self, project: Project, images: list[StoredImage], with_tag: bool
    ) -> dict[str, Any]:
        now = self.state.clock()
        first = images[0]
        content = first.content
        repository_id = self.state.repository_ids[first.name]
        pulls = [i.pulled_at for i in images if i.pulled_at is not None]
        tags = [
            {
                "id": image.id,
                "repository_id": repository_id,
                "artifact_id": first.id,
                "name": image.tag,
                "push_time": iso(image.pushed_at(now)),
                "pull_time": iso(image.pulled_at),
                "immutable": False,
            }
            for image in images
        ]
        return {
            "id": first.id,
            "type": "IMAGE",
            "media_type": content.config.media_type,
            "manifest_media_type": content.manifest_media_type,
            "project_id": project.id,
            "repository_id": repository_id,
            "repository_name": first.name,
            "digest": content.digest,
            "size": content.size,
            "icon": "",
            "push_time": iso(min(t for t in (i.pushed_at(now) for i in images) if t is not None)),
            "pull_time": iso(max(pulls) if pulls else None),
            "extra_attrs": {
                "architecture": content.spec.architecture,
                "os": content.spec.os,
                "created": "2025-01-01T00:00:00Z",
                "author": "",
                "config": {},
            },
            "annotations": None,
            "references": None,
            "labels": None,
            "tags": tags if with_tag else None,
            "addition_links": {
                "build_history": {
                    "absolute": False,
                    "href": f"{PREFIX}/projects/{project.spec.name}/repositories/"
                    f"{request_quote(first.name, project)}/artifacts/{content.digest}"
                    "/additions/build_history",
                }
            },
        }

    async def artifacts(self, request: Request) -> Response:
        found = self._project(request)
        if not isinstance(found, tuple):
            return found
        project = found[1]
        name = self._repository_name(request, project)
        if name not in self.state.repositories(project.spec.name):
            return error(404, "NOT_FOUND", f"repository {name} not found")
        query = _query(request)
        with_tag = request.query_params.get("with_tag", "true").lower() != "false"
        artifacts = [
            self._artifact_json(project, images, with_tag)
            for digest, images in self.state.artifacts(name).items()
            if _matches(query, "tags", [i.tag for i in images])
            and _matches(query, "digest", digest)
        ]
        return self.paged(request, artifacts)

    def _find_artifact(self, request: Request) -> dict[str, Any] | Response:
        found = self._project(request)
        if not isinstance(found, tuple):
            return found
        project = found[1]
        name = self._repository_name(request, project)
        reference = request.path_params["reference"]
        images = self.state.resolve(name, reference)
        if images and not reference.startswith("sha256:"):
            images = self.state.artifacts(name)[images[0].content.digest]
        if not images:
            return error(404, "NOT_FOUND", f"artifact {name}:{reference} not found")
        with_tag = request.query_params.get("with_tag", "true").lower() != "false"
        return self._artifact_json(project, images, with_tag)

    async def artifact(self, request: Request) -> Response:
        found = self._find_artifact(request)
        return found if isinstance(found, Response) else JSONResponse(found)

    async def artifact_tags(self, request: Request) -> Response:
        found = self._find_artifact(request)
        return found if isinstance(found, Response) else self.paged(request, found["tags"])

    # -- registries (the upstream replication source) ----------------------------------------
    def registry_documents(self) -> list[dict[str, Any]]:
        upstream = self.state.config.upstream
        if upstream is None:
            return []
        return [
            {
                "id": UPSTREAM_ID,
                "name": upstream.name,
                "url": upstream.url,
                "type": upstream.type,
                "insecure": upstream.url.startswith("http://"),
                "description": "",
                "status": "healthy",
                "credential": {"type": "basic", "access_key": "", "access_secret": "*****"},
                "creation_time": iso(self.state.started),
                "update_time": iso(self.state.started),
            }
        ]

    async def registries(self, request: Request) -> Response:
        principal = self.admin(request)
        if not isinstance(principal, Principal):
            return principal
        query = _query(request)
        found = [r for r in self.registry_documents() if _matches(query, "name", r["name"])]
        if "id" in request.path_params:
            hit = [r for r in found if r["id"] == request.path_params["id"]]
            if not hit:
                return error(404, "NOT_FOUND", "registry not found")
            return JSONResponse(hit[0])
        return self.paged(request, found)

    def paged(self, request: Request, items: list[Any]) -> Response:
        result = page(request, items)
        if isinstance(result, Response):
            return result
        return JSONResponse(result[0], headers=result[1])


def rest_routes(api: RestApi) -> list[BaseRoute]:
    repo = PREFIX + "/projects/{project}/repositories/{repository}"
    return [
        Route(PREFIX + "/ping", lambda _: PlainTextResponse("Pong")),
        Route(PREFIX + "/health", api.health),
        Route(PREFIX + "/systeminfo", api.systeminfo),
        Route(PREFIX + "/projects", api.projects),
        Route(PREFIX + "/projects/{project}", api.project),
        Route(PREFIX + "/projects/{project}/repositories", api.repositories),
        Route(repo, api.repository),
        Route(repo + "/artifacts", api.artifacts),
        Route(repo + "/artifacts/{reference}", api.artifact),
        Route(repo + "/artifacts/{reference}/tags", api.artifact_tags),
        Route(PREFIX + "/registries", api.registries),
        Route(PREFIX + "/registries/{id:int}", api.registries),
    ]


def request_quote(name: str, project: Project) -> str:
    """The repository part of ``name`` as it must appear in a REST path (encoded twice)."""
    return name[len(project.spec.name) + 1 :].replace("/", "%252F")
