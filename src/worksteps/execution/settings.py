"""Typed settings of the execution service (env prefix ``WORKSTEPS_EXECUTION_``, nested ``__``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worksteps.core.auth import AuthSettings
from worksteps.core.service_token import ServiceClientSettings
from worksteps.execution.registry import Site

__all__ = ["ExecutionSettings", "RankingSettings", "RateLimitSettings"]


class RankingSettings(BaseModel):
    """How offers are ordered: seconds until ready, plus penalties in seconds.

    An offer's score is its estimated time to ready (offer start + preparing duration, from
    now) plus the penalties below; the lowest score ranks first.
    """

    data_remote: float = Field(
        300.0, ge=0, le=86_400, description="Penalty (s) when the data must be moved to the site."
    )
    image_remote: float = Field(
        60.0, ge=0, le=86_400, description="Penalty (s) when the image is not cached at the site."
    )
    unknown_locality: float = Field(
        120.0,
        ge=0,
        le=86_400,
        description="Penalty (s) when the broker says nothing about data locality.",
    )


class RateLimitSettings(BaseModel):
    """Offer requests (``POST /executions``) allowed per user: a token bucket each.

    A user may make ``burst`` offer requests at once and then ``rate`` per second; beyond
    that the answer is 429 with ``Retry-After``. Counted per service process.
    """

    rate: float = Field(
        0.5, gt=0, le=10_000, description="Offer requests per second a user regains."
    )
    burst: int = Field(30, ge=1, le=100_000, description="Offer requests a user may make at once.")


class ExecutionSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORKSTEPS_EXECUTION_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = Field(
        "sqlite:///data/execution.sqlite",
        description="SQLAlchemy URL: sqlite:///PATH (default) or postgresql://…",
    )
    sites_file: Path | None = Field(
        None, description="YAML file of the federation's brokers (see registry.py)."
    )
    sites: list[Site] = Field(
        default_factory=list, description="Brokers given inline, beside those of sites_file."
    )
    auth: AuthSettings = Field(description="How callers' bearer tokens are checked.")
    service_client: ServiceClientSettings | None = Field(
        None,
        description="The service's own client at the issuer (client credentials): it follows "
        "chosen sessions with its own token, so that they are followed after a restart and "
        "after the user's token expires. Brokers must let its roles read every session.",
    )
    deadline: float = Field(
        10.0, gt=0, le=300, description="Default seconds every broker has to answer (per call)."
    )
    max_deadline: float = Field(
        60.0, gt=0, le=600, description="Longest deadline a caller may ask for (s)."
    )
    late_grace: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="How long a late broker answer is still awaited so that its offers can "
        "be rejected at once (s); later than this the broker's own expiry frees them.",
    )
    call_timeout: float = Field(
        15.0, gt=0, le=600, description="Timeout of one accept/reject/cancel/status call (s)."
    )
    health_interval: float = Field(
        60.0, ge=0, le=86_400, description="Seconds between health checks; 0: on demand only."
    )
    health_timeout: float = Field(5.0, gt=0, le=120, description="Timeout of one health GET (s).")
    follow_wait: float = Field(
        30.0,
        gt=0,
        le=300,
        description="Long-poll (s) the service uses itself to follow selected sessions.",
    )
    relay_retries: int = Field(
        8, ge=0, le=1000, description="Reconnections of a broken event stream before giving up."
    )
    relay_idle: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="A broker event stream silent this long (s) is taken as broken.",
    )
    max_body_bytes: int = Field(1 << 20, ge=1024, le=64 << 20, description="Largest request.")
    max_answer_bytes: int = Field(
        8 << 20, ge=1024, le=256 << 20, description="Largest body accepted from a broker/editor."
    )
    editor_urls: list[str] = Field(
        default_factory=list,
        description="Base URLs of the Workstep Editor: a workstep_url must start with one of "
        "them, since the caller's token is sent there.",
    )
    fetch_timeout: float = Field(
        10.0, gt=0, le=120, description="Timeout of fetching a workstep's request (s)."
    )
    ranking: RankingSettings = Field(default_factory=lambda: RankingSettings())
    rate_limit: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings())

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.deadline > self.max_deadline:
            raise ValueError("deadline is longer than max_deadline")
        if self.late_grace < self.max_deadline:
            raise ValueError("late_grace must be at least max_deadline")
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("site names must be unique")
        return self
