"""Sign-in from a terminal: OAuth 2.0 authorization code with PKCE (RFC 7636) and a loopback
redirect (RFC 8252 §7.3), as native apps do with any OIDC provider (SKA-IAM included).

The gateway says which issuer and client to use (``GET /api/auth``); the user signs in in a
browser; the issuer redirects to ``http://127.0.0.1:<port>/callback`` where this process
listens for exactly one answer; the code is exchanged for a token with the PKCE verifier.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from worksteps.client.credentials import Credentials

__all__ = ["LoginError", "login"]


class LoginError(Exception):
    """Sign-in did not complete; the message says why."""


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _Callback:
    """A one-shot loopback HTTP server that waits for the issuer's redirect."""

    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/callback":
                    self.send_error(404)
                    return
                query = parse_qs(parts.query)
                outer.params = {k: v[0] for k, v in query.items() if v}
                ok = "code" in outer.params
                body = (
                    b"Signed in to Worksteps; you can close this window."
                    if ok
                    else b"Sign-in failed; see the terminal."
                )
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.done.set()

            def log_message(self, format: str, *args: Any) -> None:
                return None  # the query holds the code: never log it

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def __enter__(self) -> _Callback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if not response.is_success:
        raise LoginError(f"{what}: HTTP {response.status_code} {response.text[:200]}")
    try:
        body = response.json()
    except ValueError:
        raise LoginError(f"{what}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise LoginError(f"{what}: the answer is not a JSON object")
    return body


def login(
    gateway: str,
    *,
    open_browser: Callable[[str], object] = webbrowser.open,
    timeout: float = 300.0,
) -> Credentials:
    """Sign in to ``gateway``; ``open_browser`` is given the sign-in URL (print it instead
    when there is no browser). Returns the credentials to store."""
    gateway = gateway.rstrip("/")
    try:
        with httpx.Client(timeout=30.0) as http:
            auth = _json(http.get(f"{gateway}/api/auth"), "the gateway's sign-in settings")
            issuer, client_id = str(auth["issuer"]).rstrip("/"), str(auth["client_id"])
            discovery = _json(
                http.get(f"{issuer}/.well-known/openid-configuration"), "the issuer's discovery"
            )
            verifier, challenge = _pkce()
            state = secrets.token_urlsafe(16)
            with _Callback() as callback:
                query = urlencode(
                    {
                        "response_type": "code",
                        "client_id": client_id,
                        "redirect_uri": callback.redirect_uri,
                        "scope": "openid profile",
                        "state": state,
                        "code_challenge": challenge,
                        "code_challenge_method": "S256",
                    }
                )
                open_browser(f"{discovery['authorization_endpoint']}?{query}")
                if not callback.done.wait(timeout):
                    raise LoginError(f"no sign-in within {timeout:.0f} s")
                params = callback.params
                redirect_uri = callback.redirect_uri
            if params.get("state") != state:
                raise LoginError("the sign-in answer does not belong to this attempt (state)")
            if "code" not in params:
                raise LoginError(f"sign-in refused: {params.get('error', 'no code')}")
            token = _json(
                http.post(
                    str(discovery["token_endpoint"]),
                    data={
                        "grant_type": "authorization_code",
                        "code": params["code"],
                        "redirect_uri": redirect_uri,
                        "client_id": client_id,
                        "code_verifier": verifier,
                    },
                ),
                "the token exchange",
            )
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach the sign-in services: {exc}") from None
    except KeyError as exc:
        raise LoginError(f"the sign-in settings lack {exc}") from None
    expires_in = float(token.get("expires_in") or 0)
    return Credentials(
        gateway=gateway,
        access_token=str(token["access_token"]),
        expires_at=time.time() + expires_in if expires_in else 0.0,
    )
