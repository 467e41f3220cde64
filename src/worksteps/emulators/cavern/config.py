"""Settings of one emulated Cavern service.

The emulator serves one VOSpace resource (``resource_id``) whose node tree is the directory
``root``: the node ``/home/alice/x`` is the file ``<root>/home/alice/x``. Bearer tokens map to
user names; every user owns ``/home/<user>`` and nothing else.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, Field, field_validator

from worksteps.emulators.faults import FaultRule

__all__ = ["CavernConfig"]


class CavernConfig(BaseModel):
    """Everything that makes one emulated Cavern different from another."""

    root: Path = Field(description="Directory holding the node tree (created if missing).")
    resource_id: str = Field(
        "ivo://example.org/cavern",
        description="IVOA resource ID; node URIs are vos://<authority>~<name>/...",
        pattern=r"^ivo://[A-Za-z0-9.\-]+/[A-Za-z0-9.\-]+$",
    )
    path_prefix: str = Field(
        "/cavern", description="URL path under which the service is mounted.", pattern=r"^/\w+$"
    )
    tokens: dict[str, str] = Field(
        default_factory=dict, description="Bearer token -> user name. Unknown tokens get 401."
    )
    create_homes: bool = Field(
        True, description="Create /home/<user> on a user's first authenticated call."
    )
    quota_bytes: int = Field(
        10 * 1024**3, ge=0, description="Bytes each user may store under /home/<user>."
    )
    bandwidth: float | None = Field(
        None,
        gt=0,
        description="Bytes per second of an async copy (None: as fast as the disk allows).",
    )
    concurrent_transfers: int = Field(
        4, ge=1, le=64, description="Async transfers executing at once; the rest stay QUEUED."
    )
    max_page_size: int | None = Field(
        None,
        ge=1,
        description="Children returned when a listing has no limit (None: all of them).",
    )
    emulate_pull_to_vospace: bool = Field(
        True,
        description=(
            "Accept pullToVoSpace (copy an http URL into a node). EMULATOR-ONLY: real Cavern "
            "answers UnsupportedOperation; turn this off to behave like it."
        ),
    )
    pull_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="Hosts a pullToVoSpace source URL may name; any other host is refused.",
    )
    preauth_lifetime: float = Field(
        3600.0, gt=0, description="Seconds a pre-authorised transfer URL stays valid."
    )
    faults: list[FaultRule] = Field(
        default_factory=list, description="Fault-injection rules active from start-up."
    )
    job_wait_max: float = Field(
        30.0, ge=0, le=600, description="Longest UWS ?WAIT= blocking poll, in seconds."
    )

    @field_validator("tokens")
    @classmethod
    def _user_names(cls, tokens: dict[str, str]) -> dict[str, str]:
        for user in tokens.values():
            if not user or "/" in user or user in {".", ".."} or "\x00" in user:
                raise ValueError(f"invalid user name {user!r}")
        return tokens

    @property
    def vos_authority(self) -> str:
        """The authority part of node URIs: ``ivo://a.b/cavern`` -> ``a.b~cavern``."""
        return self.resource_id.removeprefix("ivo://").replace("/", "~")

    def node_uri(self, path: str) -> str:
        """The ``vos://`` URI of an absolute node path (``/`` is the root), percent-encoded."""
        return f"vos://{self.vos_authority}{quote(path, safe='/')}"
