"""What a browser finds at a non-notebook session's connectURL, and Skaha's VOSI documents.

CARTA, desktop, contributed and Firefly sessions run nothing here: their connectURL serves a
page that says plainly the session is emulated. Like the real ingress, the pages need no
bearer token; a desktop page wants its ``password`` (the session id), as noVNC does. Notebook
sessions are not served here: their connectURL points at the session's own JupyterLab.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from worksteps.emulators.skaha.errors import SkahaError
from worksteps.emulators.skaha.model import RUNNING
from worksteps.emulators.skaha.supervisor import SessionSupervisor

__all__ = ["pages_router", "vosi_router"]

pages_router = APIRouter()
vosi_router = APIRouter(prefix="/skaha")

_PATH_KIND = {
    "carta": "carta",
    "desktop": "desktop",
    "contrib": "contributed",
    "firefly": "firefly",
}
_TITLES = {
    "carta": "CARTA",
    "desktop": "desktop (noVNC)",
    "contributed": "contributed application",
    "firefly": "Firefly",
}


@pages_router.get("/session/{path_kind}/{session_id}/{rest:path}")
async def session_page(request: Request, path_kind: str, session_id: str, rest: str) -> Response:
    supervisor: SessionSupervisor = request.app.state.supervisor
    record = supervisor.sessions.get(session_id)
    kind = _PATH_KIND.get(path_kind)
    if record is None or kind is None or record.kind != kind:
        raise SkahaError(404, f"session {session_id} not found")
    if kind == "desktop" and request.query_params.get("password") != session_id:
        raise SkahaError(401, "desktop password required")
    if record.status != RUNNING:
        raise SkahaError(503, f"session {session_id} is {record.status}", {"Retry-After": "1"})
    title = f"Emulated {_TITLES[kind]} session {escape(session_id)}"
    body = (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>\n"
        f"<body><h1>{title}</h1>\n"
        f"<p><strong>This session is emulated.</strong> No {_TITLES[kind]} runs behind this "
        "page: it is served by the Worksteps Skaha emulator so that the whole flow can be "
        "exercised on one machine.</p>\n"
        f"<dl><dt>Session</dt><dd>{escape(record.name)} ({escape(session_id)})</dd>\n"
        f"<dt>Owner</dt><dd>{escape(record.user)}</dd>\n"
        f"<dt>Image</dt><dd>{escape(record.image)}</dd></dl>\n</body></html>\n"
    )
    return HTMLResponse(body)


_STANDARDS = {
    "http://www.opencadc.org/std/platform#session-1": "/v1/session",
    "http://www.opencadc.org/std/platform#context-1": "/v1/context",
    "http://www.opencadc.org/std/platform#image-1": "/v1/image",
    "http://www.opencadc.org/std/platform#repository-1": "/v1/repository",
}


@vosi_router.get("/capabilities")
async def capabilities(request: Request) -> Response:
    base = str(request.base_url).rstrip("/") + "/skaha"

    def capability(standard: str, path: str, secured: bool) -> str:
        token = '\n      <securityMethod standardID="ivo://ivoa.net/sso#token"/>'
        security = token if secured else ""
        return (
            f'  <capability standardID="{standard}">\n'
            '    <interface xsi:type="vs:ParamHTTP" role="std">\n'
            f'      <accessURL use="base">{escape(base + path)}</accessURL>{security}\n'
            "    </interface>\n  </capability>\n"
        )

    parts = [
        capability("ivo://ivoa.net/std/VOSI#capabilities", "/capabilities", False),
        capability("ivo://ivoa.net/std/VOSI#availability", "/availability", False),
        *(capability(std, path, True) for std, path in _STANDARDS.items()),
    ]
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        + "".join(parts)
        + "</vosi:capabilities>\n"
    )
    return Response(xml, media_type="text/xml")


@vosi_router.get("/availability")
async def availability() -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
        "  <vosi:available>true</vosi:available>\n"
        "  <vosi:note>skaha (Worksteps emulator) is accepting requests</vosi:note>\n"
        "</vosi:availability>\n"
    )
    return Response(xml, media_type="text/xml")
