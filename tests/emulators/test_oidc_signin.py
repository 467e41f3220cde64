"""The development issuer's sign-in over real HTTP: authorization code + PKCE, and bad input."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from loopback_support import Clock
from worksteps.core.auth import AuthSettings, TokenVerifier
from worksteps.core.errors import Unauthorized, Unavailable
from worksteps.core.service_token import ServiceClientSettings, ServiceToken
from worksteps.core.serving import free_port, serve_in_thread
from worksteps.emulators.oidc import (
    DevUser,
    LocalIssuer,
    OidcClient,
    RefusedInProduction,
    SignInConfig,
    create_app,
)
from worksteps.emulators.oidc.signin import redirect_allowed, s256

CALLBACK = "http://127.0.0.1:9999/signin/callback"
SERVICE_SECRET = "s3cret-of-the-execution-service"


@dataclass
class Issuer:
    url: str
    clock: Clock
    issuer: LocalIssuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    port = free_port()
    local = LocalIssuer(f"http://127.0.0.1:{port}")
    clock = Clock()
    config = SignInConfig(
        users=[
            DevUser(name="alice", display="Alice (astronomer)"),
            DevUser(name="admin", display="Site operator", roles=["admin"]),
        ],
        clients=[
            OidcClient(
                client_id="gateway",
                name="Science Gateway",
                redirect_prefixes=["http://127.0.0.1:9999/signin/"],
            ),
            OidcClient(
                client_id="execution",
                name="Execution service",
                secret=SecretStr(SERVICE_SECRET),
                service_roles=["admin"],
            ),
        ],
        code_lifetime=60,
    )
    with serve_in_thread(create_app(local, config, clock=clock), port=port) as served:
        yield Issuer(served.url, clock, local)


def _authorize_params(verifier: str, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "gateway",
        "redirect_uri": CALLBACK,
        "state": secrets.token_urlsafe(16),
        "scope": "openid profile",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params


def _sign_in(issuer: Issuer, verifier: str, user: str = "alice", **overrides: str) -> str:
    """Choose ``user`` on the sign-in page; the code the issuer redirects back with."""
    params = _authorize_params(verifier, **overrides)
    page = httpx.get(f"{issuer.url}/authorize", params=params)
    assert page.status_code == 200, page.text
    answer = httpx.post(f"{issuer.url}/authorize", data={**params, "user": user})
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == params["redirect_uri"]
    query = parse_qs(target.query)
    assert query["state"] == [params["state"]]
    return query["code"][0]


def _redeem(issuer: Issuer, code: str, verifier: str, /, **overrides: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": CALLBACK,
        "client_id": "gateway",
    }
    data.update(overrides)
    return httpx.post(f"{issuer.url}/token", data=data)


def _oauth_error(answer: httpx.Response, error: str, status: int = 400) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, Any] = answer.json()
    assert body["error"] == error
    assert body["error_description"]
    assert "access_token" not in body
    return body


def test_discovery_announces_the_code_flow_with_pkce(issuer: Issuer) -> None:
    doc = httpx.get(f"{issuer.url}/.well-known/openid-configuration").json()
    assert doc["authorization_endpoint"] == f"{issuer.url}/authorize"
    assert doc["token_endpoint"] == f"{issuer.url}/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]


def test_the_sign_in_page_lists_the_users_with_labels(issuer: Issuer) -> None:
    verifier = secrets.token_urlsafe(48)
    page = httpx.get(f"{issuer.url}/authorize", params=_authorize_params(verifier))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Sign in to Science Gateway" in page.text
    for user in ("alice", "admin"):
        assert f'<label for="user-{user}">' in page.text
    assert "Site operator" in page.text
    assert "http" not in page.headers["content-security-policy"]  # nothing from elsewhere
    css = httpx.get(f"{issuer.url}/static/signin.css")
    assert css.status_code == 200


async def test_a_code_becomes_tokens_that_verify(issuer: Issuer) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _sign_in(issuer, verifier, user="admin")
    answer = _redeem(issuer, code, verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    settings = AuthSettings(issuer=issuer.issuer.issuer, jwks_refresh=0)
    principal = await TokenVerifier(settings).verify(body["access_token"])
    assert (principal.subject, principal.admin) == ("admin", True)
    # the id token is for the client, not for the services: they refuse it
    id_settings = settings.model_copy(update={"audience": "gateway"})
    assert (await TokenVerifier(id_settings).verify(body["id_token"])).subject == "admin"
    with pytest.raises(Unauthorized):
        await TokenVerifier(settings).verify(body["id_token"])


def test_a_wrong_verifier_is_refused_and_burns_the_code(issuer: Issuer) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _sign_in(issuer, verifier)
    _oauth_error(_redeem(issuer, code, secrets.token_urlsafe(48)), "invalid_grant")
    _oauth_error(_redeem(issuer, code, verifier), "invalid_grant")  # one attempt per code


def test_a_code_is_good_once(issuer: Issuer) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _sign_in(issuer, verifier)
    assert _redeem(issuer, code, verifier).status_code == 200
    _oauth_error(_redeem(issuer, code, verifier), "invalid_grant")


def test_an_expired_code_is_refused(issuer: Issuer) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _sign_in(issuer, verifier)
    issuer.clock.advance(61)
    _oauth_error(_redeem(issuer, code, verifier), "invalid_grant")


def test_the_redirect_uri_must_match_the_one_authorized(issuer: Issuer) -> None:
    verifier = secrets.token_urlsafe(48)
    other = "http://127.0.0.1:9999/signin/other"
    code = _sign_in(issuer, verifier, redirect_uri=other)
    _oauth_error(_redeem(issuer, code, verifier), "invalid_grant")


@pytest.mark.parametrize(
    ("overrides", "error", "status"),
    [
        ({"client_id": "intruder"}, "invalid_client", 401),
        ({"client_id": ""}, "invalid_client", 401),
        ({"grant_type": "password"}, "unsupported_grant_type", 400),
        ({"code_verifier": ""}, "invalid_request", 400),
        ({"code": "made-up"}, "invalid_grant", 400),
    ],
)
def test_bad_token_requests(
    issuer: Issuer, overrides: dict[str, str], error: str, status: int
) -> None:
    verifier = secrets.token_urlsafe(48)
    code = _sign_in(issuer, verifier)
    _oauth_error(_redeem(issuer, code, verifier, **overrides), error, status)


async def test_a_service_gets_a_token_of_its_own_with_its_secret(issuer: Issuer) -> None:
    settings = AuthSettings(issuer=issuer.issuer.issuer, jwks_refresh=0)
    url = f"{issuer.url}/token"
    async with httpx.AsyncClient() as client:
        token = ServiceToken(
            ServiceClientSettings(
                token_url=url, client_id="execution", client_secret=SecretStr(SERVICE_SECRET)
            ),
            client,
        )
        headers = await token.headers()
        assert await token.headers() == headers  # kept until shortly before it expires
        # client_secret_post works too
        form = {"grant_type": "client_credentials", "client_id": "execution"}
        answer = await client.post(url, data=form | {"client_secret": SERVICE_SECRET})
        assert answer.status_code == 200 and "id_token" not in answer.json()
    principal = await TokenVerifier(settings).verify(headers["Authorization"].split()[1])
    assert (principal.subject, principal.admin) == ("execution", True)


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("execution", "wrong"), ("execution", ""), ("gateway", "anything"), ("nobody", "x")],
)
async def test_a_wrong_secret_or_a_public_client_gets_no_service_token(
    issuer: Issuer, client_id: str, secret: str
) -> None:
    url = f"{issuer.url}/token"
    async with httpx.AsyncClient() as client:
        form = {"grant_type": "client_credentials"}
        answer = await client.post(url, data=form, auth=(client_id, secret))
        body = _oauth_error(answer, "invalid_client", 401)
        assert not secret or secret not in body["error_description"]
        token = ServiceToken(
            ServiceClientSettings(
                token_url=url, client_id=client_id, client_secret=SecretStr(secret)
            ),
            client,
        )
        with pytest.raises(Unavailable):
            await token.headers()


def test_a_public_client_needs_a_redirect_prefix() -> None:
    with pytest.raises(ValidationError, match="redirect prefix"):
        OidcClient(client_id="lost")


def test_the_token_endpoint_wants_a_form(issuer: Issuer) -> None:
    answer = httpx.post(f"{issuer.url}/token", json={"grant_type": "authorization_code"})
    _oauth_error(answer, "invalid_request")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/signin/callback",
        "http://127.0.0.1:9998/signin/callback",
        "http://127.0.0.1:9999.evil.example/signin/callback",
        "http://127.0.0.1:9999/signinx",
        "http://127.0.0.1:9999/elsewhere",
        "http://127.0.0.1:9999/signin/callback#fragment",
        "http://user@127.0.0.1:9999/signin/callback",
        "",
    ],
)
def test_a_foreign_redirect_uri_gets_a_page_and_no_redirect(
    issuer: Issuer, redirect_uri: str
) -> None:
    verifier = secrets.token_urlsafe(48)
    params = _authorize_params(verifier, redirect_uri=redirect_uri)
    for answer in (
        httpx.get(f"{issuer.url}/authorize", params=params),
        httpx.post(f"{issuer.url}/authorize", data={**params, "user": "alice"}),
    ):
        assert answer.status_code == 400
        assert "location" not in answer.headers
        assert "not allowed" in answer.text


def test_an_unknown_client_gets_a_page_and_no_redirect(issuer: Issuer) -> None:
    params = _authorize_params(secrets.token_urlsafe(48), client_id="intruder")
    answer = httpx.get(f"{issuer.url}/authorize", params=params)
    assert answer.status_code == 400
    assert "not registered" in answer.text
    assert "location" not in answer.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_authorization_requests_go_back_to_the_client(
    issuer: Issuer, overrides: dict[str, str], error: str
) -> None:
    params = _authorize_params(secrets.token_urlsafe(48), **overrides)
    answer = httpx.get(f"{issuer.url}/authorize", params=params)
    assert answer.status_code == 303
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == [error]
    assert query["state"] == [params["state"]]
    assert "code" not in query


def test_cancel_and_unknown_user(issuer: Issuer) -> None:
    params = _authorize_params(secrets.token_urlsafe(48))
    cancelled = httpx.post(f"{issuer.url}/authorize", data={**params, "action": "cancel"})
    assert cancelled.status_code == 303
    assert parse_qs(urlsplit(cancelled.headers["location"]).query)["error"] == ["access_denied"]
    nobody = httpx.post(f"{issuer.url}/authorize", data={**params, "user": "mallory"})
    assert nobody.status_code == 400
    assert "Choose one of the listed users" in nobody.text
    assert "location" not in nobody.headers


def test_the_codes_in_store_are_bounded(issuer: Issuer) -> None:
    local = LocalIssuer("http://127.0.0.1:1")
    config = SignInConfig(
        users=[DevUser(name="alice")],
        clients=[OidcClient(client_id="c", redirect_prefixes=["http://127.0.0.1:2/cb"])],
        max_codes=1,
    )
    with serve_in_thread(create_app(local, config)) as served:
        params = _authorize_params(
            secrets.token_urlsafe(48), client_id="c", redirect_uri="http://127.0.0.1:2/cb"
        )
        first = httpx.post(f"{served.url}/authorize", data={**params, "user": "alice"})
        assert "code" in parse_qs(urlsplit(first.headers["location"]).query)
        second = httpx.post(f"{served.url}/authorize", data={**params, "user": "alice"})
        error = parse_qs(urlsplit(second.headers["location"]).query)["error"]
        assert error == ["temporarily_unavailable"]


def test_production_is_refused() -> None:
    with pytest.raises(RefusedInProduction):
        create_app(LocalIssuer("http://127.0.0.1:1"), SignInConfig(production=True))


def test_redirect_prefix_matching_respects_path_segments() -> None:
    client = OidcClient(client_id="c", redirect_prefixes=["https://gw.example.org/app"])
    assert redirect_allowed(client, "https://gw.example.org/app")
    assert redirect_allowed(client, "https://gw.example.org/app/signin/callback?x=1")
    assert not redirect_allowed(client, "https://gw.example.org/apple")
    assert not redirect_allowed(client, "http://gw.example.org/app/cb")
    assert not redirect_allowed(client, "https://gw.example.org:444/app/cb")
    assert not redirect_allowed(client, "https://gw.example.org:notaport/app/cb")
    assert not redirect_allowed(client, "https://gw.example.org\\@evil.example/app")


def test_a_native_client_may_use_any_loopback_port_and_nothing_else() -> None:
    cli = OidcClient(
        client_id="cli", redirect_prefixes=["http://127.0.0.1/callback"], loopback_any_port=True
    )
    assert redirect_allowed(cli, "http://127.0.0.1:53111/callback")
    assert redirect_allowed(cli, "http://127.0.0.1/callback")
    assert not redirect_allowed(cli, "http://127.0.0.1:53111/elsewhere")
    assert not redirect_allowed(cli, "http://localhost:53111/callback")
    assert not redirect_allowed(cli, "https://127.0.0.1:53111/callback")
    web = OidcClient(client_id="web", redirect_prefixes=["http://127.0.0.1:8080/signin"])
    assert not redirect_allowed(web, "http://127.0.0.1:9999/signin/callback")
