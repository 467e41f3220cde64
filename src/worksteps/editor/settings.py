"""Typed settings of the Workstep Editor (env prefix ``WORKSTEPS_EDITOR_``, nested with ``__``).

``auth`` has no default: the editor never runs without checking tokens. Outgoing fetches (the
URL-based creation modes) follow :class:`FetchSettings`: bounded in time and size, the caller's
token only ever sent to ``trusted_origins``, ``file://`` only under ``allowed_file_roots``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worksteps.core.auth import AuthSettings

__all__ = ["EditorSettings", "FetchSettings", "Limits", "origin_of"]


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL, lower case, with the default port written out."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


class FetchSettings(BaseModel):
    """How the editor fetches the documents that URL-based creation modes name."""

    timeout: float = Field(10.0, gt=0, le=120, description="Seconds for one whole fetch.")
    max_bytes: int = Field(
        2 << 20, ge=1024, le=64 << 20, description="Largest document accepted, in bytes."
    )
    max_redirects: int = Field(3, ge=0, le=10, description="Redirects followed (http/https only).")
    trusted_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) of the federation's own services: only "
        "these receive the caller's bearer token.",
    )
    allowed_hosts: list[str] | None = Field(
        None, description="Host names that may be fetched at all; None allows any host."
    )
    allowed_file_roots: list[Path] = Field(
        default_factory=list, description="Directories file:// URLs may point into."
    )

    @field_validator("trusted_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for url in value:
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ValueError(f"trusted origin {url!r} must be an http(s) URL")
        return [origin_of(url) for url in value]


class Limits(BaseModel):
    """The largest requests the editor lets a workstep make (sites may still offer less)."""

    max_cores: int = Field(1024, ge=1, description="Most cores a workstep may ask for.")
    max_memory: int = Field(16384, ge=1, description="Most memory, GiB.")
    max_storage: int = Field(1_000_000, ge=1, description="Most storage per resource, GiB.")
    max_data: int = Field(256, ge=1, le=10_000, description="Most data resources.")
    max_duration: timedelta = Field(
        timedelta(days=30), gt=timedelta(0), description="Longest session a workstep may ask."
    )


class EditorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKSTEPS_EDITOR_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = Field(
        "sqlite:///data/editor.sqlite",
        description="SQLAlchemy URL: sqlite:///PATH (default) or postgresql://…",
    )
    auth: AuthSettings = Field(description="The OIDC issuer whose tokens are accepted.")
    public_url: str | None = Field(
        None,
        description="The editor's public base URL (links, template files, recognising its own "
        "workstep URLs); the request's own when unset.",
    )
    templates_path: Path | None = Field(
        None, description="A YAML file, or a directory of them, adding to the template catalogue."
    )
    image_registry: str = Field(
        "images.canfar.net",
        pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="Registry host that template images are pulled from ({registry}).",
    )
    datalink_service: str | None = Field(
        None,
        description="A DataLink service URL; an ivoid given as data is resolved at "
        "`{datalink_service}?ID=<ivoid>` when set.",
    )
    fetch: FetchSettings = Field(default_factory=lambda: FetchSettings())
    limits: Limits = Field(default_factory=lambda: Limits())
