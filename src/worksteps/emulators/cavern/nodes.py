"""VOSI and ``/nodes``: read, create, update properties of, and delete single nodes.

Listing follows VOSpace 2.1: ``limit`` bounds the children returned (``limit=0``: none) and
``uri`` names the child to start from, inclusive, which is what the ``vos`` client expects
when it pages (it drops the first child of every page after the first). Without ``limit``
all children are returned unless ``max_page_size`` caps the page. Every child carries its
properties, ``core#date`` included, because the client reads it for each child. (Cavern 0.10
itself ignores ``limit > 0`` and refuses ``uri``; a spec-following page is what the client is
written for, so the emulator serves that.)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .documents import (
    availability_document,
    capabilities_document,
    node_document,
    parse_node,
)
from .errors import VOSpaceFault
from .paths import NodePath, parse_node_uri
from .service import CavernService, handles_faults
from .tree import NodeInfo

__all__ = ["node_routes"]

XML = "text/xml"


def node_routes(service: CavernService) -> list[BaseRoute]:
    config, tree = service.config, service.tree

    def render(found: NodeInfo, children: list[NodeInfo] | None) -> bytes:
        page = [(config.node_uri(c.path.path), c, tree.properties(c)) for c in children or []]
        return node_document(config.node_uri(found.path.path), found, tree.properties(found), page)

    def page_bounds(request: Request, node: NodePath) -> tuple[str | None, int | None]:
        for option in ("sort", "order"):
            if request.query_params.get(option):
                raise VOSpaceFault(
                    "UnsupportedOperation", f"{option} by {request.query_params[option]}"
                )
        limit: int | None = config.max_page_size
        raw_limit = request.query_params.get("limit")
        if raw_limit is not None:
            if not raw_limit.isdigit():
                raise VOSpaceFault("InvalidArgument", "value for limit must be a positive integer.")
            limit = int(raw_limit)
        start = None
        start_uri = request.query_params.get("uri")
        if start_uri:
            start_node = parse_node_uri(start_uri, config.vos_authority)
            if not start_node.segments or start_node.parent != node:
                raise VOSpaceFault(
                    "InvalidURI", f"uri parameter ({start_uri}) not a child of target uri"
                )
            start = start_node.name
        return start, limit

    @handles_faults
    async def capabilities(request: Request) -> Response:
        return Response(capabilities_document(service.base_url(request)), media_type=XML)

    @handles_faults
    async def availability(request: Request) -> Response:
        note = f"{config.resource_id} (worksteps emulator) is accepting requests"
        return Response(availability_document(note), media_type=XML)

    @handles_faults
    async def get_node(request: Request) -> Response:
        user = service.caller(request)
        node = service.node_path(request)
        if request.query_params.get("view") == "data":
            return RedirectResponse(f"{service.base_url(request)}/files{node.path}", 303)
        found = tree.info(node)
        if not tree.may_read(user, node):
            raise VOSpaceFault("PermissionDenied", config.node_uri(node.path))
        children = None
        if found.is_container:
            start, limit = page_bounds(request, node)
            children = tree.children(node, start, limit)
        return Response(render(found, children), media_type=XML)

    @handles_faults
    async def put_node(request: Request) -> Response:
        user = service.caller(request)
        node = service.node_path(request)
        wanted = parse_node(await request.body())
        if wanted.uri and parse_node_uri(wanted.uri, config.vos_authority) != node:
            raise VOSpaceFault("InvalidURI", f"node uri {wanted.uri} does not match {node}")
        if not tree.may_write(user, node):
            raise VOSpaceFault("PermissionDenied", config.node_uri(node.path))
        if wanted.kind == "vos:ContainerNode":
            tree.make_container(node)
        elif wanted.kind == "vos:DataNode":
            tree.make_data(node)
        else:
            raise VOSpaceFault("TypeNotSupported", f"{wanted.kind} is not supported here")
        if wanted.properties:
            tree.set_properties(node, wanted.properties)
        return Response(render(tree.info(node), []), status_code=201, media_type=XML)

    @handles_faults
    async def post_node(request: Request) -> Response:
        user = service.caller(request)
        node = service.node_path(request)
        wanted = parse_node(await request.body())
        found = tree.info(node)
        is_own_home = user is not None and node.segments == ("home", user)
        if not (tree.may_write(user, node) or is_own_home):
            raise VOSpaceFault("PermissionDenied", config.node_uri(node.path))
        tree.set_properties(node, wanted.properties)
        return Response(render(tree.info(node), [] if found.is_container else None), media_type=XML)

    @handles_faults
    async def delete_node(request: Request) -> Response:
        user = service.caller(request)
        node = service.node_path(request)
        tree.info(node)
        if not tree.may_write(user, node):
            raise VOSpaceFault("PermissionDenied", config.node_uri(node.path))
        tree.delete(node)
        return Response(status_code=200)

    methods = {"GET": get_node, "PUT": put_node, "POST": post_node, "DELETE": delete_node}

    async def nodes(request: Request) -> Response:
        return await methods[request.method](request)

    return [
        Route("/capabilities", capabilities, methods=["GET"]),
        Route("/availability", availability, methods=["GET"]),
        Route("/nodes", nodes, methods=list(methods)),
        Route("/nodes/{path:path}", nodes, methods=list(methods)),
    ]
