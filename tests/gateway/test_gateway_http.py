"""The gateway over plain HTTP: sign-in and its bad inputs, session cookies, CSRF, API auth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from gateway_support import SECRET, Gateway, hidden_fields, sign_in

from worksteps.emulators.oidc.signin import s256
from worksteps.gateway.web.signing import CookieSigner

COOKIE = "worksteps_session"


@pytest.fixture
def browser_like(gateway: Gateway) -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies and does not follow redirects (so tests see them)."""
    with httpx.Client(timeout=10.0) as client:
        yield client


def _problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


def test_health_and_docs_are_public(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/docs").status_code == 200
    paths = httpx.get(f"{gateway.url}/openapi.json").json()["paths"]
    assert "/api/me" in paths
    assert "/api/probe" in paths
    assert "/signin" not in paths  # pages are not API


def test_pages_send_a_stranger_to_sign_in(gateway: Gateway) -> None:
    for path, next_path in [("/", "/"), ("/notes?x=1", "/notes?x=1")]:
        answer = httpx.get(f"{gateway.url}{path}")
        assert answer.status_code == 303
        target = urlsplit(answer.headers["location"])
        assert target.path == "/signin"
        assert parse_qs(target.query)["next"] == [next_path]


def test_the_api_answers_a_stranger_401(gateway: Gateway) -> None:
    body = _problem(httpx.get(f"{gateway.url}/api/me"), 401)
    assert body["reason"] == "unauthorized"
    _problem(httpx.get(f"{gateway.url}/api/me", headers={"Authorization": "Bearer junk"}), 401)
    _problem(httpx.post(f"{gateway.url}/api/probe"), 401)
    _problem(httpx.get(f"{gateway.url}/api/me", cookies={COOKIE: "forged.value"}), 401)


def test_signin_redirects_to_the_issuer_with_pkce(gateway: Gateway) -> None:
    answer = httpx.get(f"{gateway.url}/signin")
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{gateway.issuer.issuer}/authorize"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["client_id"] == "worksteps-gateway"
    assert query["redirect_uri"] == f"{gateway.url}/signin/callback"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("worksteps_signin=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # http on loopback


def test_sign_in_as_alice(gateway: Gateway, browser_like: httpx.Client) -> None:
    landed = sign_in(browser_like, gateway.url, "alice", next="/notes")
    assert landed == "/notes"
    cookie = next(c for c in browser_like.cookies.jar if c.name == COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert not cookie.secure
    assert browser_like.cookies.get("worksteps_signin") is None  # the attempt is forgotten
    home = browser_like.get(f"{gateway.url}/")
    assert home.status_code == 200
    assert '<span class="user-name" data-testid="user-name" title="alice">alice</span>' in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]
    me = browser_like.get(f"{gateway.url}/api/me").json()
    assert me == {"subject": "alice", "name": "alice", "roles": [], "admin": False}


def test_next_never_leaves_the_gateway(gateway: Gateway, browser_like: httpx.Client) -> None:
    for target in ["//evil.example/", "https://evil.example/", "/\\evil.example", "notes"]:
        browser_like.cookies.clear()
        assert sign_in(browser_like, gateway.url, next=target) == "/"


def test_the_callback_refuses_a_wrong_state(gateway: Gateway, browser_like: httpx.Client) -> None:
    start = browser_like.get(f"{gateway.url}/signin")
    page = browser_like.get(start.headers["location"])
    form = {**hidden_fields(page.text), "state": "forged-state", "user": "alice"}
    chosen = browser_like.post(page.url.copy_with(query=None), data=form)
    answer = browser_like.get(chosen.headers["location"])
    assert answer.status_code == 400
    assert "expired or was started in another window" in answer.text
    assert browser_like.cookies.get(COOKIE) is None


def test_the_callback_needs_the_attempt_cookie(gateway: Gateway) -> None:
    with httpx.Client() as stranger:
        start = stranger.get(f"{gateway.url}/signin")
        page = stranger.get(start.headers["location"])
        chosen = stranger.post(
            page.url.copy_with(query=None), data={**hidden_fields(page.text), "user": "alice"}
        )
    # the code reaches a browser that did not start this sign-in (login CSRF): refused
    answer = httpx.get(chosen.headers["location"])
    assert answer.status_code == 400
    assert "set-cookie" not in answer.headers or COOKIE not in answer.headers["set-cookie"]


def test_cancel_at_the_issuer(gateway: Gateway, browser_like: httpx.Client) -> None:
    start = browser_like.get(f"{gateway.url}/signin")
    page = browser_like.get(start.headers["location"])
    chosen = browser_like.post(
        page.url.copy_with(query=None), data={**hidden_fields(page.text), "action": "cancel"}
    )
    answer = browser_like.get(chosen.headers["location"])
    assert answer.status_code == 400
    assert "Sign-in was cancelled" in answer.text
    assert browser_like.cookies.get(COOKIE) is None


def test_a_replayed_callback_is_refused(gateway: Gateway, browser_like: httpx.Client) -> None:
    start = browser_like.get(f"{gateway.url}/signin")
    page = browser_like.get(start.headers["location"])
    chosen = browser_like.post(
        page.url.copy_with(query=None), data={**hidden_fields(page.text), "user": "bob"}
    )
    signin_cookie = browser_like.cookies.get("worksteps_signin")
    assert browser_like.get(chosen.headers["location"]).status_code == 303
    # same attempt cookie and the same code again: the issuer refuses the used code
    with httpx.Client(cookies={"worksteps_signin": signin_cookie or ""}) as replay:
        answer = replay.get(chosen.headers["location"])
    assert answer.status_code == 400
    assert "did not confirm who you are" in answer.text


def test_a_session_signed_with_another_secret_is_dropped(gateway: Gateway) -> None:
    token = gateway.issuer.mint("alice")
    forged = CookieSigner("x" * 40).dumps("session", {"sid": "s", "tok": token})
    answer = httpx.get(f"{gateway.url}/", cookies={COOKIE: forged})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/signin")
    assert f'{COOKIE}=""' in answer.headers["set-cookie"]  # deleted
    assert "Max-Age=0" in answer.headers["set-cookie"]


def test_a_session_whose_token_expired_is_dropped(gateway: Gateway) -> None:
    expired = gateway.issuer.mint("alice", issued_at=time.time() - 7200, lifetime=600)
    cookie = CookieSigner(SECRET).dumps("session", {"sid": "s", "tok": expired})
    assert httpx.get(f"{gateway.url}/", cookies={COOKIE: cookie}).status_code == 303
    _problem(httpx.get(f"{gateway.url}/api/me", cookies={COOKIE: cookie}), 401)
    wrong_audience = gateway.issuer.mint("alice", audience="elsewhere")
    cookie = CookieSigner(SECRET).dumps("session", {"sid": "s", "tok": wrong_audience})
    assert httpx.get(f"{gateway.url}/", cookies={COOKIE: cookie}).status_code == 303


def test_a_session_too_old_is_dropped(gateway: Gateway) -> None:
    old = CookieSigner(SECRET, clock=lambda: time.time() - 9 * 3600)
    cookie = old.dumps("session", {"sid": "s", "tok": gateway.issuer.mint("alice")})
    assert httpx.get(f"{gateway.url}/", cookies={COOKIE: cookie}).status_code == 303
    fresh = CookieSigner(SECRET).dumps("session", {"sid": "s", "tok": gateway.issuer.mint("al")})
    assert httpx.get(f"{gateway.url}/", cookies={COOKIE: fresh}).status_code == 200


def _csrf(client: httpx.Client, gateway: Gateway) -> str:
    return hidden_fields(client.get(f"{gateway.url}/notes").text)["csrf_token"]


def test_page_forms_need_the_csrf_token(gateway: Gateway, browser_like: httpx.Client) -> None:
    sign_in(browser_like, gateway.url, "alice")
    refused = browser_like.post(f"{gateway.url}/notes", data={"text": "forged"})
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert "CSRF" in refused.text
    token = _csrf(browser_like, gateway)
    wrong = browser_like.post(f"{gateway.url}/notes", data={"text": "x", "csrf_token": token[:-2]})
    assert wrong.status_code == 403
    added = browser_like.post(f"{gateway.url}/notes", data={"text": "kept", "csrf_token": token})
    assert added.status_code == 200
    assert "alice: kept" in added.text
    assert "forged" not in added.text


def test_csrf_tokens_are_bound_to_the_session(gateway: Gateway) -> None:
    with httpx.Client() as alice, httpx.Client() as bob:
        sign_in(alice, gateway.url, "alice")
        sign_in(bob, gateway.url, "bob")
        alice_token = _csrf(alice, gateway)
        answer = bob.post(f"{gateway.url}/notes", data={"text": "x", "csrf_token": alice_token})
        assert answer.status_code == 403
        # a new sign-in is a new session: the old token is worthless
        sign_in(alice, gateway.url, "alice")
        answer = alice.post(f"{gateway.url}/notes", data={"text": "x", "csrf_token": alice_token})
        assert answer.status_code == 403


def test_the_api_wants_csrf_with_cookies_only(gateway: Gateway, browser_like: httpx.Client) -> None:
    sign_in(browser_like, gateway.url, "bob")
    body = _problem(browser_like.post(f"{gateway.url}/api/probe"), 403)
    assert body["reason"] == "csrf-token-invalid"
    token = _csrf(browser_like, gateway)
    answer = browser_like.post(f"{gateway.url}/api/probe", headers={"X-CSRF-Token": token})
    assert answer.json() == {"subject": "bob"}
    # a bearer token (the CLI) needs no CSRF token, and wins over a cookie
    bearer = {"Authorization": f"Bearer {gateway.issuer.mint('admin', roles=['admin'])}"}
    assert httpx.post(f"{gateway.url}/api/probe", headers=bearer).json() == {"subject": "admin"}
    answer = browser_like.post(f"{gateway.url}/api/probe", headers=bearer)
    assert answer.json() == {"subject": "admin"}


def test_sign_out(gateway: Gateway, browser_like: httpx.Client) -> None:
    sign_in(browser_like, gateway.url, "alice")
    token = _csrf(browser_like, gateway)
    refused = browser_like.post(f"{gateway.url}/signout")
    assert refused.status_code == 403
    assert browser_like.get(f"{gateway.url}/").status_code == 200  # still signed in
    out = browser_like.post(f"{gateway.url}/signout", data={"csrf_token": token})
    assert out.status_code == 303
    assert out.headers["location"] == "/signed-out"
    assert browser_like.cookies.get(COOKIE) is None
    assert browser_like.get(f"{gateway.url}/").status_code == 303
    assert "You are signed out" in browser_like.get(f"{gateway.url}/signed-out").text


def test_unknown_addresses(gateway: Gateway) -> None:
    page = httpx.get(f"{gateway.url}/nowhere")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "Page not found" in page.text
    _problem(httpx.get(f"{gateway.url}/api/nowhere"), 404)


def test_s256_agrees_with_the_issuer() -> None:
    # the gateway computes its challenge itself; both sides must agree (RFC 7636 appendix B)
    from worksteps.gateway.web.relying_party import _s256

    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert _s256(verifier) == s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
