"""Configuration of the PrepareData emulator (one per site, beside that site's Rucio)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from worksteps.emulators.faults import FaultRule

__all__ = ["PrepareDataConfig", "StatusNames"]


class StatusNames(BaseModel):
    """The status strings the service reports; CANSRC's look like Celery states."""

    pending: str = "PENDING"
    active: str = "STARTED"
    done: str = "SUCCESS"
    failed: str = "FAILURE"


class PrepareDataConfig(BaseModel):
    """Where data is staged to, who may ask, and how fast the final copy runs."""

    rse: str = Field(description="The site's RSE: every task first replicates its DIDs here.")
    home_root: Path = Field(description="Local directory standing for /cavern/home.")
    home_prefix: str | None = Field(
        None, description="How `destination` is reported (e.g. /cavern/home); home_root if absent."
    )
    tokens: dict[str, str] = Field(
        default_factory=dict, description="Accepted bearer tokens mapped to user names."
    )
    account: str = Field("preparedata", description="Rucio account owning the rules it creates.")
    rule_lifetime: int | None = Field(7 * 86400, gt=0, description="Seconds; None keeps rules.")
    queue_seconds: float = Field(0.0, ge=0, description="Time a task waits before it starts.")
    copy_bandwidth: float = Field(
        500e6, gt=0, description="Bytes/s of the copy from the RSE into the user's area."
    )
    statuses: StatusNames = Field(default_factory=StatusNames)
    extensions: bool = Field(
        True,
        description="Report progress, destination, error and rules beside status; off answers "
        "only what the real service is known to send ({task_id, status}).",
    )
    faults: list[FaultRule] = Field(default_factory=list)
