"""Cross-site request forgery protection, bound to the browser's session.

The token of a session is an HMAC of its random session id (``sid``) under the "csrf" key: a
new sign-in gets a new sid, so a token learnt from another session (or before sign-in) is
worthless, and nothing needs storing on the server. Every unsafe request that a browser's
cookie authenticates must carry it: web forms in the field ``csrf_token`` (or the header), the
JSON API in the ``X-CSRF-Token`` header. Requests with a bearer token need none (a browser
never adds an Authorization header on its own).
"""

from __future__ import annotations

import hmac

from fastapi import Request

from worksteps.core.errors import Forbidden
from worksteps.gateway.web.signing import CookieSigner

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "CsrfRefused",
    "check_csrf",
    "csrf_token",
    "presented_token",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "This request did not carry this session's CSRF token, so it was refused. Reload "
            "the page and try again.",
            reason="csrf-token-invalid",
        )


def csrf_token(signer: CookieSigner, sid: str) -> str:
    """The CSRF token of the session ``sid``."""
    return signer.mac("csrf", sid)


async def presented_token(request: Request, *, form: bool) -> str:
    """The token a request carries: the header, else (when ``form``) the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if form and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request, signer: CookieSigner, sid: str, *, form: bool) -> None:
    """Nothing for safe methods; :class:`CsrfRefused` when an unsafe one lacks the token."""
    if request.method in SAFE_METHODS:
        return
    presented = await presented_token(request, form=form)
    if not presented or not hmac.compare_digest(
        presented.encode(), csrf_token(signer, sid).encode()
    ):
        raise CsrfRefused()
