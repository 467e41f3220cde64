"""Bearer tokens checked against a real issuer's JWKS over HTTP, through a real FastAPI app."""

import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from oidc_support import RunningIssuer
from worksteps.core.auth import Authenticator, AuthSettings, Principal, TokenVerifier
from worksteps.core.errors import install_problem_handlers
from worksteps.core.serving import start_in_thread
from worksteps.emulators.oidc import LocalIssuer


def _protected_app(settings: AuthSettings) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    authenticate = Authenticator(TokenVerifier(settings), cookie="ws_session")
    caller = Annotated[Principal, Depends(authenticate)]

    @app.get("/me")
    async def me(principal: caller) -> dict[str, Any]:
        return {"sub": principal.subject, "name": principal.name, "admin": principal.admin}

    return app


@pytest.fixture(scope="module")
def protected(oidc: RunningIssuer) -> Iterator[str]:
    served = start_in_thread(_protected_app(oidc.settings))
    yield served.url
    served.stop()


def _get(url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/me", headers=headers, **kwargs)


def test_a_valid_token_names_its_subject_and_roles(protected: str, oidc: RunningIssuer) -> None:
    answer = _get(protected, oidc.token("alice", name="Alice A."))
    assert answer.status_code == 200
    assert answer.json() == {"sub": "alice", "name": "Alice A.", "admin": False}
    admin = _get(protected, oidc.token("root", roles=["admin"])).json()
    assert admin["admin"] is True


def test_the_cookie_carries_the_token_too(protected: str, oidc: RunningIssuer) -> None:
    answer = httpx.get(f"{protected}/me", cookies={"ws_session": oidc.token("bob")})
    assert answer.json()["sub"] == "bob"


def _refused(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["reason"] == "unauthorized"
    return body


def test_no_token_and_garbage_are_refused(protected: str) -> None:
    _refused(_get(protected))
    _refused(_get(protected, "not-a-jwt"))
    _refused(httpx.get(f"{protected}/me", headers={"Authorization": "Basic YTpi"}))


def test_expired_wrong_audience_and_forged_tokens_are_refused_alike(
    protected: str, oidc: RunningIssuer
) -> None:
    expired = oidc.token("alice", issued_at=time.time() - 7200, lifetime=600)
    wrong_audience = oidc.token("alice", audience="someone-else")
    other_issuer = LocalIssuer(oidc.issuer.issuer)  # same iss URL, a key the JWKS lacks
    forged = other_issuer.mint("alice")
    tampered = oidc.token("alice")
    head, _, signature = tampered.split(".")
    swapped = ".".join([head, oidc.token("root", roles=["admin"]).split(".")[1], signature])
    bodies = [_refused(_get(protected, t)) for t in (expired, wrong_audience, forged, swapped)]
    # the same answer whatever the cause: nothing tells a forger what to fix
    assert len({b["detail"] for b in bodies}) == 1
    assert all("alice" not in str(b) for b in bodies)


def test_a_token_of_a_different_issuer_url_is_refused(protected: str, oidc: RunningIssuer) -> None:
    stranger = LocalIssuer("http://127.0.0.1:1/evil")
    _refused(_get(protected, stranger.mint("alice")))


async def test_a_rotated_key_is_fetched_once_and_unknown_kids_are_not_refetched() -> None:
    calls: list[str] = []
    issuers = [LocalIssuer("http://issuer.test")]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"jwks_uri": "http://issuer.test/jwks"})
        return httpx.Response(200, json=issuers[-1].jwks())

    # httpx's MockTransport stands in for the network here: the issuer's JSON is real
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        verifier = TokenVerifier(
            AuthSettings(issuer="http://issuer.test", jwks_refresh=3600), client=client
        )
        assert (await verifier.verify(issuers[0].mint("a"))).subject == "a"
        assert (await verifier.verify(issuers[0].mint("b"))).subject == "b"
        assert calls == ["/.well-known/openid-configuration", "/jwks"]
        issuers.append(LocalIssuer("http://issuer.test"))  # key rotation
        verifier.settings.jwks_refresh = 0
        assert (await verifier.verify(issuers[1].mint("c"))).subject == "c"
        assert len(calls) == 4
        verifier.settings.jwks_refresh = 3600
        stranger = LocalIssuer("http://issuer.test")
        for _ in range(5):
            with pytest.raises(Exception, match="bearer token"):
                await verifier.verify(stranger.mint("d"))
        assert len(calls) == 4
