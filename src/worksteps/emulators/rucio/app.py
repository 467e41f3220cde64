"""The Rucio REST API (the subset rucio-clients uses for rules, replicas, DIDs and RSEs).

Errors are answered as Rucio answers them: the status, plus ``ExceptionClass`` and
``ExceptionMessage`` both as headers and as a JSON body, so the client raises the matching
``rucio.common.exception`` class. Listings are ``application/x-json-stream`` (one JSON object
per line); single objects are ``application/json``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worksteps.emulators.faults import FaultInjector
from worksteps.emulators.rucio import wire
from worksteps.emulators.rucio.auth import Token, TokenStore
from worksteps.emulators.rucio.catalogue import RucioCatalogue
from worksteps.emulators.rucio.config import RucioConfig
from worksteps.emulators.rucio.rules import RucioError

__all__ = ["RUCIO_VERSION", "create_app"]

RUCIO_VERSION = "41.5.1"
STREAM = "application/x-json-stream"

RULE_OPTIONS = (
    "weight",
    "grouping",
    "locked",
    "activity",
    "notify",
    "purge_replicas",
    "ignore_availability",
    "comment",
    "priority",
    "meta",
    "asynchronous",
)

Handler = Callable[[Request], Awaitable[Response]]


def create_app(config: RucioConfig, catalogue: RucioCatalogue | None = None) -> FaultInjector:
    """The emulator as an ASGI app; pass ``catalogue`` to share state with PrepareData."""
    catalogue = catalogue or RucioCatalogue(config)
    tokens = TokenStore(config, catalogue.clock)
    api = _RucioAPI(catalogue, tokens)
    routes = [
        Route("/ping", api.ping, methods=["GET"]),
        Route("/auth/userpass", api.userpass, methods=["GET"]),
        Route("/auth/validate", api.guard(api.validate), methods=["GET"]),
        Route("/rses", api.guard(api.list_rses), methods=["GET"]),
        Route("/rses/", api.guard(api.list_rses), methods=["GET"]),
        Route("/rses/{rse}", api.guard(api.get_rse), methods=["GET"]),
        Route("/rses/{rse}/attr", api.guard(api.rse_attributes), methods=["GET"]),
        Route("/rses/{rse}/attr/", api.guard(api.rse_attributes), methods=["GET"]),
        Route("/rules", api.guard(api.add_rule), methods=["POST"]),
        Route("/rules/", api.guard(api.add_rule), methods=["POST"]),
        Route("/rules/{rule_id}", api.guard(api.get_rule), methods=["GET"]),
        Route("/rules/{rule_id}", api.guard(api.delete_rule), methods=["DELETE"]),
        Route("/rules/{rule_id}/locks", api.guard(api.rule_locks), methods=["GET"]),
        Route("/replicas/list", api.guard(api.list_replicas), methods=["POST"]),
        Route("/dids/{rest:path}", api.guard(api.dids), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    return FaultInjector(app, rules=config.faults)


def error_response(error: RucioError) -> Response:
    message = " ".join(error.message.split())
    headers = {
        "ExceptionClass": error.exception_class,
        "ExceptionMessage": message.encode("latin-1", "replace").decode("latin-1"),
    }
    body = {"ExceptionClass": error.exception_class, "ExceptionMessage": message}
    return JSONResponse(body, status_code=error.status, headers=headers)


def stream(items: Iterable[dict[str, Any]]) -> Response:
    return Response("".join(json.dumps(item) + "\n" for item in items), media_type=STREAM)


async def json_body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise RucioError("ValueError", "cannot decode json parameter dictionary", 400) from exc
    if not isinstance(data, dict):
        raise RucioError("TypeError", "body must be a json dictionary", 400)
    return data


def parse_dids(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise RucioError("InvalidObject", "'dids' must be a non-empty list of {scope, name}", 409)
    out = []
    for item in value:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("scope"), str)
            and isinstance(item.get("name"), str)
        ):
            raise RucioError("InvalidObject", f"invalid DID {item!r}", 409)
        out.append((item["scope"], item["name"]))
    return out


class _RucioAPI:
    def __init__(self, catalogue: RucioCatalogue, tokens: TokenStore) -> None:
        self.catalogue = catalogue
        self.tokens = tokens

    def guard(self, handler: Callable[[Request, Token], Awaitable[Response]]) -> Handler:
        """Require a valid ``X-Rucio-Auth-Token`` and turn Rucio errors into responses."""

        async def endpoint(request: Request) -> Response:
            try:
                token = self.tokens.validate(request.headers.get("X-Rucio-Auth-Token"))
                return await handler(request, token)
            except RucioError as error:
                return error_response(error)

        return endpoint

    async def ping(self, request: Request) -> Response:
        return JSONResponse({"version": RUCIO_VERSION})

    async def userpass(self, request: Request) -> Response:
        username = request.headers.get("X-Rucio-Username")
        password = request.headers.get("X-Rucio-Password")
        if not username or not password:
            return error_response(
                RucioError(
                    "CannotAuthenticate",
                    "Cannot authenticate without passing all required arguments",
                    401,
                )
            )
        try:
            token = self.tokens.userpass(request.headers.get("X-Rucio-Account"), username, password)
        except RucioError as error:
            return error_response(error)
        headers = {
            "X-Rucio-Auth-Account": token.account,
            "X-Rucio-Auth-Token": token.value,
            "X-Rucio-Auth-Token-Expires": wire.date(token.expires_at) or "",
            "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
        }
        return Response(b"", headers=headers, media_type="application/octet-stream")

    async def validate(self, request: Request, token: Token) -> Response:
        return JSONResponse(
            {
                "account": token.account,
                "identity": token.identity,
                "lifetime": wire.date(token.expires_at),
                "audience": None,
                "authz_scope": None,
            }
        )

    async def list_rses(self, request: Request, token: Token) -> Response:
        expression = request.query_params.get("expression")
        if expression:
            names = self.catalogue.resolve(expression, status=400)
        else:
            names = sorted(self.catalogue.rses)
        return stream(wire.rse_json(n, self.catalogue, protocols=False) for n in names)

    async def get_rse(self, request: Request, token: Token) -> Response:
        return JSONResponse(wire.rse_json(request.path_params["rse"], self.catalogue))

    async def rse_attributes(self, request: Request, token: Token) -> Response:
        return JSONResponse(self.catalogue.attributes(request.path_params["rse"]))

    async def add_rule(self, request: Request, token: Token) -> Response:
        body = await json_body(request)
        if "dids" not in body or "copies" not in body or "rse_expression" not in body:
            raise RucioError("KeyError", "'dids', 'copies' and 'rse_expression' are required", 400)
        account = body.get("account") or token.account
        if account != token.account and token.account != "root":
            raise RucioError(
                "AccessDenied", f"Account {token.account} can not add rules for {account}", 401
            )
        copies, lifetime = body["copies"], body.get("lifetime")
        if not isinstance(copies, int) or (lifetime is not None and not isinstance(lifetime, int)):
            raise RucioError("InvalidObject", "'copies' and 'lifetime' must be integers", 409)
        options = {key: body.get(key) for key in RULE_OPTIONS}
        ids = await run_in_threadpool(
            self.catalogue.add_rules,
            account,
            parse_dids(body["dids"]),
            copies,
            str(body["rse_expression"]),
            lifetime,
            body.get("source_replica_expression"),
            options,
        )
        return Response(json.dumps(ids), status_code=201, media_type="application/json")

    async def get_rule(self, request: Request, token: Token) -> Response:
        now = await run_in_threadpool(self.catalogue.settle)
        rule = self.catalogue.rule(request.path_params["rule_id"])
        return JSONResponse(wire.rule_json(rule, now))

    async def delete_rule(self, request: Request, token: Token) -> Response:
        rule = self.catalogue.rule(request.path_params["rule_id"])
        if token.account not in (rule.account, "root"):
            raise RucioError(
                "AccessDenied", f"Account {token.account} can not remove rule {rule.id}", 401
            )
        if rule.options.get("locked"):
            raise RucioError("UnsupportedOperation", f"The rule {rule.id} is locked", 401)
        await run_in_threadpool(self.catalogue.settle)
        self.catalogue.delete_rule(rule.id)
        return Response(b"", status_code=200)

    async def rule_locks(self, request: Request, token: Token) -> Response:
        now = await run_in_threadpool(self.catalogue.settle)
        rule = self.catalogue.rule(request.path_params["rule_id"])
        return stream(wire.lock_json(lock, rule, now) for lock in rule.locks)

    async def list_replicas(self, request: Request, token: Token) -> Response:
        body = await json_body(request)
        dids = parse_dids(body.get("dids"))
        schemes = body.get("schemes") or None
        expression = body.get("rse_expression")
        allowed = set(self.catalogue.resolve(expression, status=400)) if expression else None
        all_states = bool(body.get("all_states", False))
        now = await run_in_threadpool(self.catalogue.settle)
        lines, seen = [], set()
        for scope, name in dids:
            for content in self.catalogue.did(scope, name).files:
                key = (content.scope, content.name)
                if key in seen:
                    continue
                seen.add(key)
                states = self.catalogue.replica_states(content.scope, content.name, now)
                states = {
                    rse: state
                    for rse, state in states.items()
                    if (allowed is None or rse in allowed) and (all_states or state == "AVAILABLE")
                }
                lines.append(wire.replica_json(content, states, self.catalogue, schemes))
        return stream(lines)

    async def dids(self, request: Request, token: Token) -> Response:
        parts = _raw_segments(request, "/dids/")
        action = None
        if len(parts) == 3 and parts[2] in ("files", "meta", "rules"):
            action = parts.pop()
        if len(parts) != 2:
            raise RucioError("ValueError", "expected /dids/{scope}/{name}[/files|meta|rules]", 400)
        scope, name = parts
        info = self.catalogue.did(scope, name)
        if action is None:
            return JSONResponse(wire.did_json(info, self.catalogue))
        if action == "meta":
            return JSONResponse(wire.did_meta_json(info, self.catalogue))
        if action == "files":
            return stream(wire.file_json(f, self.catalogue) for f in info.files)
        now = await run_in_threadpool(self.catalogue.settle)
        return stream(wire.rule_json(r, now) for r in self.catalogue.rules_for(scope, name))


def _raw_segments(request: Request, marker: str) -> list[str]:
    """Path segments after ``marker``, split before percent-decoding.

    DID names may contain ``/``; the client sends it as ``%2F``, which the decoded path would
    turn into a separator.
    """
    raw = request.scope.get("raw_path")
    text = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    rest = text.split(marker, 1)[1] if marker in text else ""
    return [unquote_plus(segment) for segment in rest.split("/") if segment]
