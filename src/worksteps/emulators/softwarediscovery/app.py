"""The Software Discovery emulator's HTTP API.

``shared/spec/software-discovery/openapi.yaml`` is empty, so the routes are this emulator's
own, serving documents in the sample format unchanged:

    GET /health                       {"status": "ok"}
    GET /software                     {"software": [summary + url, …]}; filters ``type``,
                                      ``specification`` (session kind) and ``q`` (name or
                                      description contains, case-insensitive)
    GET /software/{id}                the software-metadata document (JSON; YAML when asked
                                      by Accept or ``?format=yaml``); 404 when unknown
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worksteps.emulators.faults import FaultInjector
from worksteps.emulators.softwarediscovery.config import SoftwareDiscoveryConfig, SoftwareEntry
from worksteps.schema.yaml_codec import encode_yaml

__all__ = ["create_app"]

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


def create_app(config: SoftwareDiscoveryConfig) -> FaultInjector:
    entries = {entry.id: entry for entry in config.entries}

    def summary(request: Request, entry: SoftwareEntry) -> dict[str, Any]:
        return {
            "id": entry.id,
            "name": entry.executable.name,
            "type": entry.executable.type,
            "version": entry.metadata.version,
            "description": entry.metadata.description,
            "specifications": entry.metadata.specifications or [],
            "url": str(request.url_for("software", id=entry.id)),
        }

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def listing(request: Request) -> Response:
        kind = request.query_params.get("type")
        spec = request.query_params.get("specification")
        text = request.query_params.get("q", "").lower()
        found = [
            summary(request, e)
            for e in entries.values()
            if (kind is None or e.executable.type == kind)
            and (spec is None or spec in (e.metadata.specifications or []))
            and (text in e.executable.name.lower() or text in e.metadata.description.lower())
        ]
        return JSONResponse({"software": found})

    async def software(request: Request) -> Response:
        entry = entries.get(request.path_params["id"])
        if entry is None:
            return JSONResponse({"detail": "no such software"}, status_code=404)
        accept = request.headers.get("accept", "")
        wants_yaml = request.query_params.get("format") == "yaml" or (
            any(t in accept for t in _YAML_TYPES) and "application/json" not in accept
        )
        if wants_yaml:
            return Response(encode_yaml(entry.document()), media_type="application/yaml")
        return JSONResponse(entry.document())

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/software", listing, methods=["GET"]),
        Route("/software/{id}", software, methods=["GET"], name="software"),
    ]
    return FaultInjector(Starlette(routes=routes), rules=config.faults)
