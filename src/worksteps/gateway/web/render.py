"""Server-rendered pages: the Jinja2 templates, what every page is given, its security headers.

Every page gets ``user`` (the signed-in principal, or None), ``csrf_token`` (for its forms),
``nav`` (the main navigation) and ``path``. Templates autoescape; pages load nothing from
another origin, and the Content-Security-Policy says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from worksteps.gateway.web.csrf import csrf_token
from worksteps.gateway.web.forms import field_id
from worksteps.gateway.web.session import WebSession
from worksteps.gateway.web.signing import CookieSigner
from worksteps.schema.isotime import parse_duration, parse_instant

__all__ = ["PAGE_HEADERS", "NavLink", "Pages", "web_session"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavLink:
    """An entry of the main navigation: shown to signed-in users."""

    label: str
    path: str


def when(value: datetime | str | None) -> str:
    """An instant as people read it: ``2026-03-01 14:05:09 UTC``."""
    if value is None or value == "":
        return ""
    try:
        instant = value if isinstance(value, datetime) else parse_instant(str(value))
    except ValueError:
        return str(value)
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_kind(kind: str | None) -> str:
    """``…/kinds/executable/docker-container.yaml`` -> ``docker-container``."""
    return (kind or "").rsplit("/", 1)[-1].removesuffix(".yaml")


def human_duration(value: str | None) -> str:
    """An ISO 8601 duration as people read it: ``PT2M5S`` -> ``2 min 5 s``."""
    if not value:
        return ""
    try:
        seconds = round(parse_duration(value).total_seconds())
    except ValueError:
        return value
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    parts.append(f"{seconds} s" if seconds or not (hours or minutes) else "")
    return " ".join(p for p in parts if p)


def web_session(request: Request) -> WebSession | None:
    """The session a page guard found for this request, if any."""
    session = getattr(request.state, "web_session", None)
    return session if isinstance(session, WebSession) else None


class Pages:
    """Renders the gateway's templates (and those of page routers added later)."""

    def __init__(
        self, signer: CookieSigner, nav: Sequence[NavLink], extra: Sequence[Path] = ()
    ) -> None:
        self.signer = signer
        self.nav = list(nav)
        self.templates = Jinja2Templates(directory=[*extra, TEMPLATES])
        env = self.templates.env
        env.globals["field_id"] = field_id
        env.filters["when"] = when
        env.filters["kind"] = short_kind
        env.filters["duration"] = human_duration

    def render(self, request: Request, name: str, *, status: int = 200, **context: Any) -> Response:
        session = web_session(request)
        context.setdefault("user", session.principal if session else None)
        context.setdefault("csrf_token", csrf_token(self.signer, session.sid) if session else "")
        context.setdefault("nav", self.nav if session else [])
        context.setdefault("path", request.url.path)
        return self.templates.TemplateResponse(
            request, name, context, status_code=status, headers=PAGE_HEADERS
        )
