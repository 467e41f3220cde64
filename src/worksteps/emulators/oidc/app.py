"""The serving half of the local issuer: discovery, JWKS and a development sign-in.

The sign-in is the OAuth 2.0 authorization-code flow with PKCE (S256), for public clients:

    GET  /authorize   a server-rendered page listing the configured development users
    POST /authorize   the chosen user: a one-time code, sent back to the client's redirect_uri
    POST /token       code + code_verifier -> access_token, id_token (RFC 6749 §4.1.3)
    POST /token       client_credentials: a confidential client's own token (RFC 6749 §4.4)

Errors follow RFC 6749: when the client or its redirect_uri cannot be trusted the user sees a
page and nobody is redirected (§4.1.2.1); other authorization errors go back to the client as
``error=…&state=…``; the token endpoint answers ``{"error", "error_description"}`` JSON (§5.2).
There are no passwords, so :class:`~worksteps.emulators.oidc.signin.SignInConfig` with
``production=True`` refuses to build the app at all.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from worksteps.emulators.oidc.issuer import LocalIssuer
from worksteps.emulators.oidc.signin import (
    AuthorizationCodes,
    OidcClient,
    RedemptionRefused,
    SignInConfig,
    redirect_allowed,
    valid_challenge,
)

__all__ = ["RefusedInProduction", "create_app"]

_HERE = Path(__file__).parent
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


class RefusedInProduction(RuntimeError):
    """The development issuer was told it runs in production; it will not start."""


def create_app(
    issuer: LocalIssuer,
    config: SignInConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The issuer's HTTP face; ``issuer.issuer`` must be the URL it is served at.

    ``config`` lists the development users and the clients; without it the issuer only
    publishes its discovery document and keys. ``clock`` is when codes expire (tests move it).
    """
    config = config or SignInConfig()
    if config.production:
        raise RefusedInProduction(
            "The development OIDC issuer signs anyone in without a password; it must not run "
            "in production. Configure the real identity provider (e.g. SKA-IAM) instead."
        )
    codes = AuthorizationCodes(config.code_lifetime, config.max_codes, clock)
    templates = Jinja2Templates(directory=_HERE / "templates")
    app = FastAPI(title="Worksteps development OIDC issuer")
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    def page(request: Request, name: str, status: int, **context: Any) -> Response:
        return templates.TemplateResponse(
            request, name, context, status_code=status, headers=_PAGE_HEADERS
        )

    def refuse_page(request: Request, message: str) -> Response:
        return page(request, "problem.html", 400, message=message)

    def trusted_client(params: dict[str, str]) -> OidcClient | str:
        """The client when it and its redirect_uri may be trusted, else why not."""
        client = config.client(params.get("client_id", ""))
        if client is None:
            return "This application (client_id) is not registered with the issuer."
        if not redirect_allowed(client, params.get("redirect_uri", "")):
            return "The application asked to be sent back to an address it is not allowed."
        return client

    def authorization_error(params: dict[str, str]) -> tuple[str, str] | None:
        if params.get("response_type", "code") != "code":
            return "unsupported_response_type", "Only response_type=code is supported."
        if not valid_challenge(params.get("code_challenge", "")):
            return "invalid_request", "A PKCE code_challenge (43 characters) is required."
        if params.get("code_challenge_method") != "S256":
            return "invalid_request", "code_challenge_method must be S256."
        return None

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        base = issuer.issuer
        return {
            "issuer": base,
            "jwks_uri": f"{base}/jwks",
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            "scopes_supported": ["openid", "profile"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return issuer.jwks()

    @app.get("/authorize", include_in_schema=False)
    async def authorize_page(request: Request) -> Response:
        params = dict(request.query_params)
        client = trusted_client(params)
        if isinstance(client, str):
            return refuse_page(request, client)
        if problem := authorization_error(params):
            return _back(params, error=problem[0], error_description=problem[1])
        return signin_page(request, client, params, error=None, status=200)

    def signin_page(
        request: Request, client: OidcClient, params: dict[str, str], error: str | None, status: int
    ) -> Response:
        hidden = {k: params.get(k, "") for k in _AUTHORIZE_FIELDS}
        return page(
            request,
            "signin.html",
            status,
            client=client.name or client.client_id,
            users=config.users,
            hidden=hidden,
            error=error,
            chosen=params.get("user", ""),
        )

    @app.post("/authorize", include_in_schema=False)
    async def authorize(request: Request) -> Response:
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        client = trusted_client(params)
        if isinstance(client, str):
            return refuse_page(request, client)
        if problem := authorization_error(params):
            return _back(params, error=problem[0], error_description=problem[1])
        if params.get("action") == "cancel":
            return _back(params, error="access_denied", error_description="Sign-in cancelled.")
        user = config.user(params.get("user", ""))
        if user is None:
            return signin_page(request, client, params, "Choose one of the listed users.", 400)
        code = codes.issue(
            client_id=client.client_id,
            redirect_uri=params["redirect_uri"],
            challenge=params["code_challenge"],
            user=user.name,
            scope=params.get("scope", ""),
            nonce=params.get("nonce") or None,
        )
        if code is None:
            return _back(params, error="temporarily_unavailable", error_description="Try again.")
        return _back(params, code=code)

    def service_token(request: Request, params: dict[str, str]) -> JSONResponse:
        """RFC 6749 §4.4: a confidential client's token for itself."""
        client_id, secret = _client_secret(request.headers.get("authorization"), params)
        client = config.client(client_id)
        if client is None or client.secret is None or secret is None:
            return _token_error("invalid_client", "Client authentication failed.", status=401)
        expected = client.secret.get_secret_value().encode()
        if not hmac.compare_digest(expected, secret.encode()):
            return _token_error("invalid_client", "Client authentication failed.", status=401)
        lifetime = config.token_lifetime
        access = issuer.mint(
            client.client_id,
            audience=client.audience,
            roles=client.service_roles,
            lifetime=lifetime,
            extra={"name": client.name or client.client_id, "client_id": client.client_id},
        )
        body = {"access_token": access, "token_type": "Bearer", "expires_in": int(lifetime)}
        return JSONResponse(body, headers=_NO_STORE)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        if not request.headers.get("content-type", "").startswith(_FORM):
            return _token_error("invalid_request", f"Send the parameters as {_FORM}.")
        form = await request.form()
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        if params.get("grant_type") == "client_credentials":
            return service_token(request, params)
        client = config.client(params.get("client_id", ""))
        if client is None:
            return _token_error("invalid_client", "Unknown client_id.", status=401)
        if params.get("grant_type") != "authorization_code":
            return _token_error(
                "unsupported_grant_type", "Use authorization_code, or client_credentials."
            )
        missing = [k for k in ("code", "code_verifier", "redirect_uri") if not params.get(k)]
        if missing:
            return _token_error("invalid_request", f"Missing: {', '.join(missing)}.")
        try:
            grant = codes.redeem(
                params["code"],
                client_id=client.client_id,
                redirect_uri=params["redirect_uri"],
                verifier=params["code_verifier"],
            )
        except RedemptionRefused as exc:
            return _token_error("invalid_grant", str(exc))
        user = config.user(grant.user)
        if user is None:  # the configuration cannot change while serving; be safe anyway
            return _token_error("invalid_grant", "The user no longer exists.")
        lifetime = config.token_lifetime
        common = {"name": user.label, "azp": client.client_id}
        access = issuer.mint(
            user.name,
            audience=client.audience,
            roles=user.roles,
            lifetime=lifetime,
            extra={**common, "scope": grant.scope, "client_id": client.client_id},
        )
        nonce = {"nonce": grant.nonce} if grant.nonce else {}
        id_token = issuer.mint(
            user.name,
            audience=client.client_id,
            roles=user.roles,
            lifetime=lifetime,
            extra={**common, **nonce, "auth_time": int(time.time())},
        )
        body = {
            "access_token": access,
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": int(lifetime),
            "scope": grant.scope,
        }
        return JSONResponse(body, headers=_NO_STORE)

    return app


def _back(params: dict[str, str], **answer: str) -> RedirectResponse:
    """Send the browser back to the (already checked) redirect_uri with ``answer`` and state."""
    if params.get("state"):
        answer["state"] = params["state"]
    parts = urlsplit(params["redirect_uri"])
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *answer.items()])
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=303)


def _client_secret(header: str | None, params: dict[str, str]) -> tuple[str, str | None]:
    """The client's id and secret: HTTP Basic (RFC 6749 §2.3.1), else the form's fields."""
    if header and header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return "", None
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    return params.get("client_id", ""), params.get("client_secret")


def _token_error(error: str, description: str, *, status: int = 400) -> JSONResponse:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )
