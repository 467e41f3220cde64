"""Typed settings of one site's broker (env prefix ``WORKSTEPS_BROKER_``, nested with ``__``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worksteps.core.auth import AuthSettings
from worksteps.site.services import SiteServicesSettings

__all__ = ["BrokerSettings", "Capacity", "EngineSettings", "EstimateSettings"]


class Capacity(BaseModel):
    """What the site can run at one instant."""

    cores: int = Field(64, ge=0, le=10_000_000, description="CPU cores.")
    memory: int = Field(256, ge=0, le=100_000_000, description="Memory in GiB.")
    gpus: int = Field(0, ge=0, le=1_000_000, description="GPUs.")
    storage: int = Field(10_000, ge=0, le=1_000_000_000, description="Scratch storage in GiB.")


class EngineSettings(BaseModel):
    """How the preparation engine polls, retries and gives up."""

    poll_min: float = Field(0.05, gt=0, le=60, description="First poll delay of a step (s).")
    poll_max: float = Field(5.0, gt=0, le=600, description="Longest delay between polls (s).")
    poll_growth: float = Field(1.6, ge=1.0, le=4.0, description="Delay factor per idle poll.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random spread of every delay (share).")
    retries: int = Field(
        30,
        ge=0,
        le=1000,
        description="Transient failures in a row tolerated per step (at the default delays, "
        "about five minutes of a service failing every call).",
    )
    retry_base: float = Field(0.2, gt=0, le=60, description="First retry delay (s).")
    retry_max: float = Field(10.0, gt=0, le=3600, description="Longest retry delay (s).")
    settle: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="After a launch whose answer was lost (a timeout, a reset connection), "
        "seconds to wait before looking for the session it may have made: it is launched again "
        "only if none is found by then (Skaha has no idempotency key).",
    )
    stall_timeout: timedelta = Field(
        timedelta(minutes=30),
        gt=timedelta(0),
        description="A step without progress this long fails its session (the watchdog).",
    )
    lease: timedelta = Field(
        timedelta(minutes=2),
        gt=timedelta(0),
        description="How long a claimed step is "
        "reserved for its worker; a crashed worker's steps are taken over after it.",
    )
    concurrency: int = Field(32, ge=1, le=1024, description="Steps run at once per worker.")
    monitor_interval: float = Field(5.0, gt=0, le=600, description="Session monitor poll (s).")
    notebook_image: str = Field(
        "images.canfar.net/skaha/astroml-notebook:latest",
        description="Image that runs Jupyter notebook executables.",
    )
    user: str = Field("worksteps", description="User area owner when the request has none.")
    call_timeout: float = Field(60.0, gt=0, le=3600, description="Longest one site call (s).")

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> EngineSettings:
        # A step's lease must outlive its longest call, or another worker could take it over.
        if self.lease.total_seconds() <= self.call_timeout:
            raise ValueError("engine.lease must be longer than engine.call_timeout")
        return self


class EstimateSettings(BaseModel):
    """What the broker assumes about the site until its own history says otherwise."""

    transfer_rate: float = Field(
        100e6, gt=0, description="Bytes/s of replication between storage elements."
    )
    copy_rate: float = Field(200e6, gt=0, description="Bytes/s of copies into user storage.")
    pull_rate: float = Field(50e6, gt=0, description="Bytes/s of image replication.")
    session_start: timedelta = Field(
        timedelta(seconds=30), ge=timedelta(0), description="Time for a session to start."
    )
    unknown_data: timedelta = Field(
        timedelta(minutes=1), ge=timedelta(0), description="Time assumed for data of unknown size."
    )
    history: int = Field(20, ge=0, le=1000, description="Recent steps of a kind that count.")
    cache_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="How long site answers (replicas, image presence) are reused for estimates.",
    )


class BrokerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKSTEPS_BROKER_", env_nested_delimiter="__", extra="forbid"
    )

    site: str = Field(
        "site-a", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Site name."
    )
    database_url: str = Field(
        "sqlite:///data/broker.sqlite",
        description="SQLAlchemy URL: sqlite:///PATH (default) or postgresql://…",
    )
    base_url: str | None = Field(
        None, description="Public base URL for meta.url links; the request's own when unset."
    )
    capacity: Capacity = Field(default_factory=lambda: Capacity())
    offer_ttl: timedelta = Field(
        timedelta(minutes=5),
        ge=timedelta(seconds=1),
        le=timedelta(days=1),
        description="How long an offer holds its capacity before it expires.",
    )
    default_duration: timedelta = Field(
        timedelta(hours=2), gt=timedelta(0), description="Session length when none is asked."
    )
    max_duration: timedelta = Field(
        timedelta(days=14), gt=timedelta(0), description="Longest session the site books."
    )
    default_window: timedelta = Field(
        timedelta(days=1),
        ge=timedelta(0),
        description="How far after the earliest possible start offers may begin, when the "
        "request gives no start window.",
    )
    horizon: timedelta = Field(
        timedelta(days=30),
        gt=timedelta(0),
        le=timedelta(days=3650),
        description="How far ahead the calendar is searched for when a refused request fits.",
    )
    max_offers: int = Field(4, ge=1, le=16, description="Most offers made for one request.")
    preparation: timedelta = Field(
        timedelta(minutes=1),
        ge=timedelta(0),
        description="Estimated time from acceptance until the session is available.",
    )
    release: timedelta = Field(
        timedelta(seconds=10), ge=timedelta(0), description="Time to release after a session."
    )
    default_cores: int = Field(1, ge=1, description="Cores when the request names none.")
    default_memory: int = Field(2, ge=1, description="Memory (GiB) when the request names none.")
    default_storage: int = Field(1, ge=1, description="Storage (GiB) for unsized storage.")
    allowed_file_roots: list[Path] = Field(
        default_factory=list, description="Directories file:// data may come from."
    )
    platforms: list[str] = Field(
        default_factory=lambda: ["linux/amd64"], description="Container platforms (os/arch)."
    )
    max_body_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description="Largest request.")
    auth: AuthSettings | None = Field(
        None,
        description="How callers' bearer tokens are checked (the federation's OIDC issuer). "
        "Set, every route but /health needs a token and each offer set and session belongs to "
        "its caller. None: an open broker (a broker behind its own gateway, or for tests).",
    )
    engine: EngineSettings = Field(default_factory=lambda: EngineSettings())
    estimates: EstimateSettings = Field(default_factory=lambda: EstimateSettings())
    services: SiteServicesSettings | None = Field(
        None,
        description="The site's Skaha, Rucio, Cavern and Harbor; without them accepted "
        "sessions are booked but not prepared.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> BrokerSettings:
        if self.default_duration > self.max_duration:
            raise ValueError("default_duration is longer than max_duration")
        return self
