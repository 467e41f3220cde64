"""OCI distribution API (``/v2/``) and Harbor's registry token service (``/service/token``).

Every ``/v2/`` request needs a token or basic credentials; without them the answer is 401
with ``WWW-Authenticate: Bearer realm=".../service/token",service="harbor-registry",
scope="repository:<name>:pull"``, exactly the challenge Docker, containerd and oras follow.
Manifests are served in their stored media type only if the client accepts it; blobs are
streamed (optionally at ``serve_rate``) and hash to the digest that names them unless the
image is configured with corrupt layers. The API is read-only: pushes get ``UNSUPPORTED``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from worksteps.emulators.harbor.auth import SERVICE, Accounts, TokenService
from worksteps.emulators.harbor.content import Blob
from worksteps.emulators.harbor.state import RegistryState
from worksteps.emulators.harbor.wire import error, iso

__all__ = ["OciApi", "oci_routes"]

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
PIECE = 64 * 1024


class OciApi:
    def __init__(self, state: RegistryState, accounts: Accounts, tokens: TokenService) -> None:
        self.state = state
        self.accounts = accounts
        self.tokens = tokens

    # -- authorisation ---------------------------------------------------------------------
    def _challenge(self, request: Request, scope: str | None, reason: str | None) -> Response:
        realm = str(request.base_url).rstrip("/") + "/service/token"
        header = f'Bearer realm="{realm}",service="{SERVICE}"'
        if scope:
            header += f',scope="{scope}"'
        if reason:
            header += f',error="{reason}"'
        return error(
            401,
            "UNAUTHORIZED",
            "authentication required" if not reason else f"unauthorized: {reason}",
            headers={"WWW-Authenticate": header, **API_VERSION},
        )

    def _authorize(
        self, request: Request, kind: str, name: str | None, action: str
    ) -> Response | None:
        """None when the caller may do ``action`` on ``kind:name`` (None: just be known)."""
        scope = f"{kind}:{name}:{action}" if name else None
        authorization = request.headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            grant = self.tokens.check(value, self.state.clock())
            if grant is None:
                return self._challenge(request, scope, "invalid_token")
            if name is None or grant.allows(kind, name, action):
                return None
            return self._challenge(request, scope, "insufficient_scope")
        if scheme.lower() == "basic":
            principal = self.accounts.authenticate(authorization, bearer=False)
            if principal is None:
                return self._challenge(request, scope, "invalid_credentials")
            if name is None:
                return None
            allowed = self.tokens.entitled(principal, kind, name)
            if action in allowed or "*" in allowed:
                return None
            return error(403, "DENIED", f"requested access to {kind} {name} is denied")
        return self._challenge(request, scope, None)

    # -- token service ---------------------------------------------------------------------
    async def token(self, request: Request) -> Response:
        principal = self.accounts.authenticate(request.headers.get("authorization"), bearer=False)
        if principal is None:
            return error(401, "UNAUTHORIZED", "authentication required: invalid credentials")
        scopes = [s for value in request.query_params.getlist("scope") for s in value.split()]
        now = self.state.clock()
        token, _ = self.tokens.issue(principal, scopes, now)
        body = {"token": token, "expires_in": self.tokens.lifetime, "issued_at": iso(now)}
        return JSONResponse(body)

    # -- registry --------------------------------------------------------------------------
    async def root(self, request: Request) -> Response:
        denied = self._authorize(request, "registry", None, "")
        return denied or JSONResponse({}, headers=API_VERSION)

    async def catalog(self, request: Request) -> Response:
        denied = self._authorize(request, "registry", "catalog", "*")
        if denied:
            return denied
        names = sorted(self.state.repositories())
        return self._listing(request, names, lambda chosen: {"repositories": chosen})

    async def tags(self, request: Request) -> Response:
        name = request.path_params["name"]
        denied = self._authorize(request, "repository", name, "pull")
        if denied:
            return denied
        images = self.state.present_images(name)
        if not images:
            return error(404, "NAME_UNKNOWN", f"repository name not known to registry: {name}")
        tags = sorted(image.tag for image in images)
        return self._listing(request, tags, lambda chosen: {"name": name, "tags": chosen})

    def _listing(
        self, request: Request, items: list[str], wrap: Callable[[list[str]], dict[str, object]]
    ) -> Response:
        """``n``/``last`` paging of the distribution spec, with a ``Link`` to the next page."""
        last = request.query_params.get("last")
        if last is not None:
            items = [item for item in items if item > last]
        headers = dict(API_VERSION)
        number = request.query_params.get("n")
        if number is not None and number.isdigit():
            count = int(number)
            if count < len(items):
                query = urlencode({"n": count, "last": items[count - 1]}) if count else ""
                headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
            items = items[:count]
        return JSONResponse(wrap(items), headers=headers)

    async def manifest(self, request: Request) -> Response:
        name, reference = request.path_params["name"], request.path_params["reference"]
        denied = self._authorize(request, "repository", name, "pull")
        if denied:
            return denied
        images = self.state.resolve(name, reference)
        if not images:
            if not self.state.known_repository(name):
                return error(404, "NAME_UNKNOWN", f"repository name not known to registry: {name}")
            return error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {reference}")
        content = images[0].content
        accepted = {
            part.split(";")[0].strip()
            for value in request.headers.getlist("accept")
            for part in value.split(",")
        } - {""}
        kind = content.manifest_media_type
        if accepted and kind not in accepted and "*/*" not in accepted:
            return error(
                404,
                "MANIFEST_UNKNOWN",
                f"manifest found, but accept header does not support {kind}",
            )
        headers = {
            **API_VERSION,
            "Content-Type": kind,
            "Docker-Content-Digest": content.digest,
            "Etag": f'"{content.digest}"',
            "Content-Length": str(len(content.manifest)),
        }
        if request.method == "HEAD":
            return Response(headers=headers)
        now = self.state.clock()
        for image in images:
            image.pulled_at = now
        return Response(content.manifest, headers=headers)

    async def blob(self, request: Request) -> Response:
        name, digest = request.path_params["name"], request.path_params["digest"]
        denied = self._authorize(request, "repository", name, "pull")
        if denied:
            return denied
        found = self.state.blob(name, digest)
        if found is None:
            if not self.state.known_repository(name):
                return error(404, "NAME_UNKNOWN", f"repository name not known to registry: {name}")
            return error(404, "BLOB_UNKNOWN", f"blob unknown to registry: {digest}")
        blob, corrupt = found
        headers = {
            **API_VERSION,
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": blob.digest,
            "Etag": f'"{blob.digest}"',
            "Content-Length": str(blob.size),
        }
        if request.method == "HEAD":
            return Response(headers=headers)
        return StreamingResponse(self._stream(blob, corrupt), headers=headers)

    async def _stream(self, blob: Blob, corrupt: bool) -> AsyncIterator[bytes]:
        rate = self.state.config.serve_rate
        for chunk in blob.chunks(corrupt=corrupt):
            if rate is None:
                yield chunk
                continue
            for start in range(0, len(chunk), PIECE):
                piece = chunk[start : start + PIECE]
                yield piece
                await asyncio.sleep(len(piece) / rate)

    async def unsupported(self, request: Request) -> Response:
        if request.url.path.startswith("/v2/") and request.method in ("GET", "HEAD"):
            return error(404, "NAME_UNKNOWN", "repository name not known to registry")
        return error(405, "UNSUPPORTED", "the emulated registry is read-only")


def oci_routes(api: OciApi) -> list[BaseRoute]:
    read = ["GET", "HEAD"]
    every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/service/token", api.token, methods=["GET"]),
        Route("/v2/", api.root, methods=read),
        Route("/v2/_catalog", api.catalog, methods=read),
        Route("/v2/{name:path}/tags/list", api.tags, methods=read),
        Route("/v2/{name:path}/manifests/{reference}", api.manifest, methods=read),
        Route("/v2/{name:path}/blobs/{digest}", api.blob, methods=read),
        Route("/v2/{rest:path}", api.unsupported, methods=every),
    ]
