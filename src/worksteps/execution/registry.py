"""The federation's brokers: a sites file, what each site can do, and whether it answers.

Sites file (YAML, or JSON)::

    sites:
      - name: site-a                       # unique; [A-Za-z0-9][A-Za-z0-9._-]{0,63}
        url: http://127.0.0.1:8082         # the broker's base URL (http or https)
        description: Cambridge SRC node    # optional
        health_url: http://…/              # optional; default: the broker URL itself
        capabilities:                      # optional; all fields optional
          sessions: [notebook, headless, carta, desktop]
          executables: [jupyter-notebook, docker-container]   # empty: any
          cores: 64                        # the site's size; requests above it are not sent
          memory: 256                      # GiB
          gpus: 0
          storage: 2000                    # GiB
          data: [SITE-A]                   # storage elements (RSEs) at the site

A bare list of sites is accepted too. Health is in memory only: a broker is ``up`` when it
answers HTTP (any status below 500), ``degraded`` on 5xx, ``down`` when it cannot be reached;
every fan-out also reports what it saw.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from worksteps.core.clock import utcnow
from worksteps.core.errors import FieldError, InvalidInput
from worksteps.schema.documents import ExecutionRequest

__all__ = ["Capabilities", "Health", "Registry", "Site", "SitesFileError", "load_sites"]

HealthStatus = Literal["unknown", "up", "degraded", "down"]


class Capabilities(BaseModel):
    """What a site offers; used to show the federation and to skip hopeless requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sessions: list[str] = Field(default_factory=list, description="Session kinds it runs.")
    executables: list[str] = Field(
        default_factory=list,
        description="Executable kinds it accepts (short names such as docker-container, or "
        "kind URIs); empty: any.",
    )
    cores: int | None = Field(None, ge=0, description="Most cores one session may get.")
    memory: int | None = Field(None, ge=0, description="Most memory (GiB) one session may get.")
    gpus: int | None = Field(None, ge=0, description="GPUs at the site.")
    storage: int | None = Field(None, ge=0, description="Scratch storage (GiB).")
    data: list[str] = Field(default_factory=list, description="Storage elements at the site.")


def _http_url(value: str) -> str:
    url = httpx.URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http(s) URL with a host")
    return value.rstrip("/")


class Site(BaseModel):
    """One site of the federation and its broker."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    url: str = Field(description="The broker's base URL.")
    description: str | None = Field(None, max_length=2000)
    health_url: str | None = Field(None, description="GET to check health; default: url.")
    capabilities: Capabilities = Field(default_factory=Capabilities)

    @field_validator("url", "health_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    def refusal(self, request: ExecutionRequest) -> str | None:
        """Why this site cannot run ``request`` at all, from its capabilities; None if it may."""
        caps = self.capabilities
        executable = request.executable
        if caps.executables and executable is not None:
            short = executable.kind.rsplit("/", 1)[-1].removesuffix(".yaml")
            if short not in caps.executables and executable.kind not in caps.executables:
                return f"the site runs only {', '.join(caps.executables)} executables"
        compute = request.compute
        for what, limit in (("cores", caps.cores), ("memory", caps.memory)):
            wanted = getattr(compute, what, None) if compute is not None else None
            need = wanted.min if wanted is not None else None
            if limit is not None and need is not None and need > limit:
                return f"{what}: at least {need} needed, the site has {limit}"
        return None


class _SitesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sites: list[Site]


class SitesFileError(ValueError):
    """The sites file cannot be read or is not valid; the message names the place."""


def _parse(document: Any, source: str) -> list[Site]:
    if isinstance(document, list):
        document = {"sites": document}
    if not isinstance(document, dict):
        raise SitesFileError(f"{source}: must hold a list of sites, or a mapping with 'sites'")
    try:
        sites = _SitesFile.model_validate(document).sites
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SitesFileError(f"{source}: {where}: {first['msg']}") from None
    names = [s.name for s in sites]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise SitesFileError(f"{source}: site names must be unique: {', '.join(dupes)}")
    return sites


def load_sites(path: Path) -> list[Site]:
    """The sites of a sites file; :class:`SitesFileError` when it is missing or invalid."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SitesFileError(f"{path}: cannot be read: {exc}") from None
    return _parse(document, str(path))


@dataclass
class Health:
    """The last thing known about a broker's health."""

    status: HealthStatus = "unknown"
    checked: datetime | None = None
    latency: float | None = None
    http_status: int | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checked": self.checked.isoformat().replace("+00:00", "Z") if self.checked else None,
            "latency": self.latency,
            "httpStatus": self.http_status,
            "detail": self.detail,
        }


class Registry:
    """The sites, in the order given, and their health."""

    def __init__(self, sites: list[Site]) -> None:
        names = [s.name for s in sites]
        if len(set(names)) != len(names):
            raise SitesFileError("site names must be unique across the sites file and settings")
        self.sites: dict[str, Site] = {s.name: s for s in sites}
        self.health: dict[str, Health] = {s.name: Health() for s in sites}
        # seconds each broker usually takes to answer an offer request (a moving average)
        self.answer_times: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.sites)

    def get(self, name: str) -> Site | None:
        return self.sites.get(name)

    def choose(self, names: list[str] | None) -> list[Site]:
        """Every site (``names`` None) or the named ones, in registry order; InvalidInput
        naming the unknown ones."""
        if names is None:
            return list(self.sites.values())
        if unknown := [n for n in names if n not in self.sites]:
            raise InvalidInput(
                f"Unknown sites: {', '.join(unknown)}.",
                [FieldError("sites", f"unknown site {n!r}") for n in unknown],
            )
        return [s for s in self.sites.values() if s.name in names]

    def note(self, name: str, status: HealthStatus, detail: str | None = None) -> None:
        """Record what a call to the broker showed (a fan-out answer, a refused connection)."""
        if name in self.health:
            self.health[name] = Health(status, utcnow(), None, None, detail)

    def note_answer_time(self, name: str, seconds: float) -> None:
        """Record how long the broker took to answer an offer request (or the deadline it
        missed), for :meth:`longest_first`."""
        if name in self.sites:
            before = self.answer_times.get(name)
            self.answer_times[name] = seconds if before is None else 0.7 * before + 0.3 * seconds

    def longest_first(self, sites: list[Site]) -> list[Site]:
        """``sites`` in the order to ask them: the one that usually takes longest to answer
        first, those never heard from before all (they may be the slowest); ties in registry
        order. The fan-out ends with its slowest answer, so the slowest should start first."""
        never = float("inf")
        return sorted(sites, key=lambda site: -self.answer_times.get(site.name, never))

    async def check(
        self, client: httpx.AsyncClient, within: float, names: list[str] | None = None
    ) -> None:
        """GET every broker (or those named) concurrently and keep what each answered."""
        chosen = [self.sites[n] for n in (names or list(self.sites)) if n in self.sites]
        await asyncio.gather(*(self._check_one(client, site, within) for site in chosen))

    async def _check_one(self, client: httpx.AsyncClient, site: Site, within: float) -> None:
        started = time.monotonic()
        try:
            answer = await client.get(site.health_url or site.url + "/", timeout=within)
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.health[site.name] = Health("down", utcnow(), None, None, detail)
            return
        latency = round(time.monotonic() - started, 4)
        status: HealthStatus = "up" if answer.status_code < 500 else "degraded"
        failure = None if status == "up" else f"HTTP {answer.status_code}"
        self.health[site.name] = Health(status, utcnow(), latency, answer.status_code, failure)

    def describe(self) -> list[dict[str, Any]]:
        """Every site with its capabilities and last health, for ``GET /sites``."""
        return [
            {
                "name": site.name,
                "url": site.url,
                "description": site.description,
                "capabilities": site.capabilities.model_dump(exclude_none=True),
                "health": self.health[site.name].as_dict(),
            }
            for site in self.sites.values()
        ]
