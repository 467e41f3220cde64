"""Typed settings of the Science Gateway (env prefix ``WORKSTEPS_GATEWAY_``, nested ``__``).

Unsafe combinations refuse to start (a :class:`pydantic.ValidationError` at construction):
the default cookie secret, or authentication turned off, outside ``dev_mode``.
"""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worksteps.core.auth import AuthSettings

__all__ = ["DEFAULT_COOKIE_SECRET", "GatewaySettings"]

DEFAULT_COOKIE_SECRET = "worksteps-development-cookie-secret-do-not-use"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKSTEPS_GATEWAY_", env_nested_delimiter="__", extra="forbid"
    )

    dev_mode: bool = Field(
        False, description="Development: allows the default cookie secret and auth=None."
    )
    auth: AuthSettings | None = Field(
        None,
        description="How users' tokens are checked (the OIDC issuer). None turns sign-in off: "
        "everyone is `dev_user` (dev_mode only).",
    )
    client_id: str = Field(
        "worksteps-gateway",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The gateway's OAuth2 client id at the issuer (a public client, PKCE).",
    )
    cli_client_id: str = Field(
        "worksteps-cli",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="The CLI's client id at the issuer (native app: PKCE, loopback redirect).",
    )
    scope: str = Field("openid profile", max_length=200, description="Scopes asked for.")
    base_url: str = Field(
        "http://127.0.0.1:8080",
        description="Where browsers reach the gateway (scheme://host:port); the sign-in "
        "callback is {base_url}/signin/callback.",
    )
    cookie_secret: SecretStr = Field(
        SecretStr(DEFAULT_COOKIE_SECRET),
        description="Signs the session cookies (at least 32 characters).",
    )
    cookie_secure: bool | None = Field(
        None,
        description="Send cookies over https only. Default: true unless base_url is "
        "http://127.0.0.1, http://localhost or http://[::1].",
    )
    session_lifetime: float = Field(
        8 * 3600.0, ge=60, le=7 * 86_400, description="Longest a session lasts (s)."
    )
    signin_lifetime: float = Field(
        600.0, ge=30, le=3600, description="Time allowed between sign-in and its callback (s)."
    )
    dev_user: str = Field(
        "dev",
        pattern=r"^[a-z][a-z0-9_-]{0,30}$",
        description="Who everyone is when auth is None (dev_mode only).",
    )
    http_timeout: float = Field(
        10.0, gt=0, le=120, description="Timeout of calls to the issuer (s)."
    )

    @model_validator(mode="after")
    def _safe(self) -> Self:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("base_url must be an origin (scheme://host:port), without a path")
        if len(self.cookie_secret.get_secret_value()) < 32:
            raise ValueError("cookie_secret must be at least 32 characters")
        if not self.dev_mode:
            if self.cookie_secret.get_secret_value() == DEFAULT_COOKIE_SECRET:
                raise ValueError(
                    "cookie_secret is the published default; set WORKSTEPS_GATEWAY_COOKIE_SECRET "
                    "(or dev_mode for development only)"
                )
            if self.auth is None:
                raise ValueError("auth is required outside dev_mode (sign-in cannot be off)")
        if self.cookie_secure is None:
            loopback_http = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
            self.cookie_secure = not loopback_http
        return self

    @property
    def origin(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def callback_url(self) -> str:
        return f"{self.origin}/signin/callback"

    @property
    def secure(self) -> bool:
        return bool(self.cookie_secure)
