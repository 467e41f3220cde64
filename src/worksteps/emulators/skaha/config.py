"""Configuration of the Skaha emulator: what the site offers and how its sessions behave.

The values mirror the knobs of a real Skaha deployment (Helm ``registryHosts``, the resource
``context``, ``maxUserSessions``, ``sessionexpiry``) plus what only an emulator needs: where
session working directories live, how long a "pull" takes, and which bearer token is whom.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

__all__ = ["SESSION_KINDS", "ImageEntry", "SkahaConfig"]

SESSION_KINDS = ("notebook", "desktop", "carta", "headless", "firefly", "contributed")
"""The session types Skaha v1 accepts in ``type`` (``desktop-app`` is attached, not created)."""

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


class ImageEntry(BaseModel):
    """One image of the ``/image`` listing (Skaha caches these from Harbor)."""

    id: str = Field(
        description="Full reference, registry host first, e.g. images.canfar.net/p/n:1."
    )
    types: list[str] = Field(description="Session types the image is labelled for.")
    digest: str = Field("", description="Manifest digest as Harbor reports it.")

    @model_validator(mode="after")
    def _known_types(self) -> ImageEntry:
        unknown = [t for t in self.types if t not in SESSION_KINDS]
        if unknown:
            raise ValueError(f"unknown session types {unknown}; known: {list(SESSION_KINDS)}")
        return self


def _default_images() -> list[ImageEntry]:
    return [
        ImageEntry(id="images.canfar.net/skaha/astroml:latest", types=["notebook", "headless"]),
        ImageEntry(id="images.canfar.net/skaha/carta:4.1", types=["carta"]),
        ImageEntry(id="images.canfar.net/skaha/desktop:1.0", types=["desktop"]),
        ImageEntry(id="images.canfar.net/skaha/terminal:1.1.2", types=["headless"]),
        ImageEntry(id="images.canfar.net/skaha/firefly:2024.3", types=["firefly"]),
        ImageEntry(id="images.canfar.net/skaha/pluto:1.0", types=["contributed"]),
    ]


def _default_data_root() -> Path:
    return Path(tempfile.gettempdir()) / "worksteps-skaha"


class SkahaConfig(BaseModel):
    """Everything the emulator needs to know; immutable once the app is created."""

    model_config = {"frozen": True}

    registry_hosts: list[str] = Field(
        default_factory=lambda: ["images.canfar.net"],
        min_length=1,
        description="Trusted registry hosts; a session image must start with one of them.",
    )
    images: list[ImageEntry] = Field(
        default_factory=_default_images, description="What GET /v1/image lists."
    )
    max_cores: int = Field(16, ge=1, le=256, description="Largest 'cores' option (1..max).")
    max_ram_gb: int = Field(64, ge=1, le=1024, description="Largest 'ram' option in GiB (1..max).")
    gpu_options: list[int] = Field(
        default_factory=lambda: [0], description="Allowed values of 'gpus'."
    )
    default_cores: int = Field(2, ge=1, description="Cores of a fixed session that omits cores.")
    default_ram_gb: int = Field(8, ge=1, description="RAM of a fixed session that omits ram.")
    default_request_cores: int = Field(1, ge=1, description="Flexible session core request.")
    default_limit_cores: int = Field(8, ge=1, description="Flexible session core limit.")
    default_request_ram_gb: int = Field(4, ge=1, description="Flexible session RAM request.")
    default_limit_ram_gb: int = Field(32, ge=1, description="Flexible session RAM limit.")
    max_user_sessions: int = Field(
        5, ge=1, description="Non-headless Pending/Running sessions allowed per user (maxCount)."
    )
    session_lifetime: float = Field(
        345600.0,
        gt=0,
        le=31_536_000,
        description="Seconds from start to expiry (skaha.sessionexpiry); renew resets it.",
    )
    start_latency: float = Field(
        1.0, ge=0, le=3600, description="Seconds a new session stays Pending ('pulling the image')."
    )
    terminating_seconds: float = Field(
        1.0, ge=0, le=600, description="Seconds a deleted session is listed as Terminating."
    )
    stop_grace: float = Field(
        3.0,
        gt=0,
        le=120,
        description="Seconds between SIGTERM and SIGKILL of a session's processes.",
    )
    notebook_ready_timeout: float = Field(
        120.0, gt=0, le=3600, description="Seconds a JupyterLab may take to answer before Failed."
    )
    data_root: Path = Field(
        default_factory=_default_data_root,
        description="Holds home/<user>/ (the user's storage) and sessions/<id>/ (working dirs).",
    )
    sessions_host: str | None = Field(
        None,
        description=(
            "Public base URL of the session pages (CARTA, desktop, ...), e.g. "
            "'http://127.0.0.1:8080'; derived from each request when absent."
        ),
    )
    notebook_host: str = Field(
        "127.0.0.1", description="Loopback address JupyterLab binds to and its connectURL names."
    )
    top_level_directory: str = Field(
        "arc", description="Mount point of user storage inside a session (/arc/home/<user>)."
    )
    jupyter_command: list[str] = Field(
        default_factory=lambda: ["jupyter", "lab"],
        min_length=1,
        description="How to start JupyterLab; resolved next to the running Python when relative.",
    )
    tokens: dict[str, str] = Field(
        default_factory=dict, description="Bearer token -> user name, checked first."
    )
    unknown_tokens: Literal["derive", "reject"] = Field(
        "derive",
        description=(
            "'derive': any other non-empty token is a user (the token itself when it is a "
            "plain short name, else 'user-' + a hash); 'reject': answer 401."
        ),
    )
    run_as_uid: int = Field(1000, ge=0, description="runAsUID reported in session documents.")

    @model_validator(mode="after")
    def _consistent(self) -> SkahaConfig:
        if self.default_cores > self.max_cores or self.default_limit_cores > self.max_cores:
            raise ValueError("default cores must not exceed max_cores")
        if self.default_ram_gb > self.max_ram_gb or self.default_limit_ram_gb > self.max_ram_gb:
            raise ValueError("default ram must not exceed max_ram_gb")
        if self.default_request_cores > self.default_limit_cores:
            raise ValueError("default_request_cores must not exceed default_limit_cores")
        if self.default_request_ram_gb > self.default_limit_ram_gb:
            raise ValueError("default_request_ram_gb must not exceed default_limit_ram_gb")
        return self

    @property
    def core_options(self) -> list[int]:
        return list(range(1, self.max_cores + 1))

    @property
    def ram_options(self) -> list[int]:
        return list(range(1, self.max_ram_gb + 1))

    def user_for_token(self, token: str) -> str | None:
        """The user a bearer token stands for, or None when the token is refused."""
        if not token:
            return None
        if token in self.tokens:
            return self.tokens[token]
        if self.unknown_tokens == "reject":
            return None
        if _USER_NAME.fullmatch(token):
            return token
        return "user-" + hashlib.sha256(token.encode()).hexdigest()[:10]

    def user_home(self, user: str) -> Path:
        """The user's storage (what /arc/home/<user> is inside every session)."""
        return self.data_root / "home" / user

    def session_dir(self, session_id: str) -> Path:
        """A session's working directory; headless commands run here."""
        return self.data_root / "sessions" / session_id

    def log_path(self, session_id: str) -> Path:
        """Where a session's stdout and stderr go (``view=logs``)."""
        return self.data_root / "logs" / f"{session_id}.log"
