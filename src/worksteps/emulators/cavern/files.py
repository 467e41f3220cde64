"""Bytes of data nodes: ``/files/{path}`` (bearer token) and ``/preauth:{grant}/{path}``.

GET and HEAD answer with ``Content-Length``, ``digest: md5=<base64>`` (what cadcutils checks a
download against), a file name and byte ranges. PUT streams the body into the node within
the owner's quota (413 when exceeded); a ``digest`` header on the request is verified (412 on
mismatch, which cadcutils retries). A PUT or GET through a pre-authorised URL completes the
sync transfer job that negotiated it.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from .errors import VOSpaceFault
from .jobs import Phase
from .paths import NodePath
from .service import CavernService, handles_faults

__all__ = ["file_routes"]


def _digest(md5_hex: str) -> str:
    return "md5=" + base64.b64encode(bytes.fromhex(md5_hex)).decode()


def _requested_md5(request: Request) -> str | None:
    header = request.headers.get("digest", "")
    if not header.lower().startswith("md5="):
        return None
    try:
        return base64.b64decode(header[4:], validate=True).hex()
    except (binascii.Error, ValueError):
        raise VOSpaceFault("InvalidArgument", f"malformed digest header {header!r}") from None


def file_routes(service: CavernService) -> list[BaseRoute]:
    config, tree = service.config, service.tree

    def read(user: str | None, node: NodePath) -> Response:
        found = tree.info(node)
        if not tree.may_read(user, node):
            raise VOSpaceFault("PermissionDenied", config.node_uri(node.path))
        if found.is_container:
            raise VOSpaceFault("InvalidArgument", f"{node.path} is a container node")
        headers = {"digest": _digest(tree.md5(found))}
        return FileResponse(
            tree.locate(node),
            headers=headers,
            filename=node.name,
            content_disposition_type="inline",
        )

    async def write(request: Request, user: str | None, node: NodePath) -> Response:
        if not tree.may_write(user, node):
            raise VOSpaceFault("PermissionDenied", config.node_uri(node.path))
        length = request.headers.get("content-length")
        upload = tree.upload(node, expected=int(length) if length and length.isdigit() else None)
        try:
            async for chunk in request.stream():
                upload.write(chunk)
            wanted = _requested_md5(request)
            if wanted is not None and wanted != upload.md5:
                return Response(
                    f"PreconditionFailed: expected md5 {wanted}, received {upload.md5}\n",
                    status_code=412,
                    media_type="text/plain",
                )
            md5 = upload.commit()
        finally:
            upload.discard()
        return Response(status_code=201, headers={"digest": _digest(md5)})

    @handles_faults
    async def files(request: Request) -> Response:
        user = service.caller(request)
        node = service.node_path(request)
        if request.method == "PUT":
            return await write(request, user, node)
        return read(user, node)

    @handles_faults
    async def preauth(request: Request) -> Response:
        node = service.node_path(request)
        direction = "put" if request.method == "PUT" else "get"
        grant = service.verify(str(request.path_params["grant"]), node, direction)
        try:
            job = service.board.get(grant.job, grant.user)
        except VOSpaceFault:
            job = None  # the job may have been forgotten; the grant still stands
        try:
            if direction == "put":
                response = await write(request, grant.user, node)
            else:
                response = read(grant.user, node)
        except VOSpaceFault as fault:
            if job is not None:
                service.board.set_phase(job, Phase.ERROR, fault.text)
            raise
        if job is not None and response.status_code < 300 and request.method != "HEAD":
            service.board.set_phase(job, Phase.COMPLETED)
        return response

    methods = ["GET", "HEAD", "PUT"]
    return [
        Route("/files/{path:path}", files, methods=methods),
        Route("/preauth:{grant}/{path:path}", preauth, methods=methods),
    ]
