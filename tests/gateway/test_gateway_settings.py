"""Gateway settings: unsafe combinations refuse to start; the environment configures it all."""

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from worksteps.core.auth import AuthSettings
from worksteps.core.serving import serve_in_thread
from worksteps.gateway import GatewayAuthenticator, GatewaySettings, create_app
from worksteps.gateway.settings import DEFAULT_COOKIE_SECRET

AUTH = AuthSettings(issuer="http://127.0.0.1:1")
SECRET = "s" * 32


def test_the_default_secret_is_refused_outside_dev_mode() -> None:
    with pytest.raises(ValidationError, match="published default"):
        GatewaySettings(auth=AUTH)
    assert GatewaySettings(auth=AUTH, dev_mode=True).cookie_secret.get_secret_value() == (
        DEFAULT_COOKIE_SECRET
    )


def test_sign_in_cannot_be_off_outside_dev_mode() -> None:
    with pytest.raises(ValidationError, match="auth is required"):
        GatewaySettings(cookie_secret=SECRET)
    assert GatewaySettings(cookie_secret=SECRET, dev_mode=True).auth is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cookie_secret": "short"}, "at least 32"),
        ({"base_url": "ftp://127.0.0.1"}, "http"),
        ({"base_url": "http://127.0.0.1:8080/gateway"}, "without a path"),
        ({"client_id": "has space"}, "client_id"),
        ({"session_lifetime": 10}, "session_lifetime"),
    ],
)
def test_bad_values_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GatewaySettings(**{"auth": AUTH, "cookie_secret": SECRET, **changes})


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [
        ("http://127.0.0.1:8080", False),
        ("http://localhost:8080", False),
        ("http://[::1]:8080", False),
        ("http://gateway.example.org", True),
        ("https://gateway.example.org", True),
        ("https://127.0.0.1:8443", True),
    ],
)
def test_cookies_are_secure_unless_on_loopback_http(base_url: str, secure: bool) -> None:
    settings = GatewaySettings(auth=AUTH, cookie_secret=SECRET, base_url=base_url)
    assert settings.secure is secure
    cookie = GatewayAuthenticator(settings).sessions.cookie
    assert cookie == ("__Host-worksteps_session" if secure else "worksteps_session")
    forced = GatewaySettings(auth=AUTH, cookie_secret=SECRET, base_url=base_url, cookie_secure=True)
    assert forced.secure


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSTEPS_GATEWAY_AUTH__ISSUER", "https://ska-iam.example.org/")
    monkeypatch.setenv("WORKSTEPS_GATEWAY_AUTH__AUDIENCE", "srcnet")
    monkeypatch.setenv("WORKSTEPS_GATEWAY_COOKIE_SECRET", SECRET)
    monkeypatch.setenv("WORKSTEPS_GATEWAY_BASE_URL", "https://gateway.example.org")
    monkeypatch.setenv("WORKSTEPS_GATEWAY_CLIENT_ID", "worksteps")
    settings = GatewaySettings()
    assert settings.auth is not None
    assert settings.auth.audience == "srcnet"
    assert settings.callback_url == "https://gateway.example.org/signin/callback"
    assert settings.secure
    assert SECRET not in repr(settings)


def test_dev_mode_without_auth_signs_everyone_in_as_the_dev_user() -> None:
    settings = GatewaySettings(dev_mode=True, dev_user="dana")
    with serve_in_thread(create_app(settings)) as served, httpx.Client() as client:
        assert client.get(f"{served.url}/").status_code == 303
        signed = client.get(f"{served.url}/signin", params={"next": "/"})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/"
        assert 'title="dana">dana</span>' in client.get(f"{served.url}/").text
        assert client.get(f"{served.url}/api/me").json()["subject"] == "dana"
        # no issuer, so no bearer token can be checked: refused rather than trusted
        bearer = {"Authorization": "Bearer anything"}
        assert httpx.get(f"{served.url}/api/me", headers=bearer).status_code == 401


def test_a_dev_session_is_not_accepted_once_auth_is_on() -> None:
    dev = GatewaySettings(dev_mode=True, cookie_secret=SECRET)
    real = GatewaySettings(auth=AUTH, cookie_secret=SECRET)
    with serve_in_thread(create_app(dev)) as served, httpx.Client() as client:
        client.get(f"{served.url}/signin")
        cookie = client.cookies.get("worksteps_session")
    assert cookie
    with serve_in_thread(create_app(real)) as served:
        answer = httpx.get(f"{served.url}/api/me", cookies={"worksteps_session": cookie})
        assert answer.status_code == 401
