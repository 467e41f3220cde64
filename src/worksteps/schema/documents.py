"""Top-level documents: the execution request, sessions (offers) and offer sets."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from worksteps.schema import kinds
from worksteps.schema.common import (
    Component,
    Cost,
    Metadata,
    Metric,
    Schedule,
    SessionPhase,
    WireModel,
)
from worksteps.schema.isotypes import IsoDuration, IsoInstant, IsoInterval
from worksteps.schema.resources import (
    ComputeResource,
    DataResource,
    Executable,
    StorageResource,
)

__all__ = [
    "Connector",
    "ExecutionRequest",
    "ExecutionSession",
    "OfferSet",
    "RequestedSchedule",
    "RequestedScheduleBlock",
    "ScheduledExecutionSession",
    "SimpleExecutionSession",
]


class RequestedSchedule(WireModel):
    duration: IsoDuration | None = None
    start: IsoInterval | None = None


class RequestedScheduleBlock(WireModel):
    requested: RequestedSchedule | None = None


class ExecutionRequest(WireModel):
    """What the client wants run; ``meta`` (a name) is accepted as an extension."""

    meta: Metadata | None = None
    executable: Executable | None = None
    compute: ComputeResource | None = None
    storage: list[StorageResource] | None = None
    data: list[DataResource] | None = None
    schedule: RequestedScheduleBlock | None = None
    costs: list[Cost] | None = None
    metrics: list[Metric] | None = None


class Connector(WireModel):
    """How to reach a running session (e.g. the notebook URL)."""

    kind: str | None = None
    status: Literal["PREPARING", "AVAILABLE", "FINISHED"] | None = None
    protocol: str | None = None
    location: str | None = None


class SimpleExecutionSession(Component):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/session/simple-execution-session.yaml"
    ] = kinds.SESSION_SIMPLE
    phase: SessionPhase | None = None
    expires: IsoInstant | None = None
    executable: Executable | None = None
    compute: ComputeResource | None = None
    storage: list[StorageResource] | None = None
    data: list[DataResource] | None = None
    connectors: list[Connector] | None = None


class ScheduledExecutionSession(SimpleExecutionSession):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/session/scheduled-execution-session.yaml"
    ] = kinds.SESSION_SCHEDULED  # type: ignore[assignment]
    schedule: Schedule | None = None


ExecutionSession = Annotated[
    SimpleExecutionSession | ScheduledExecutionSession, Field(discriminator="kind")
]


class OfferSet(Component):
    """The answer to an execution request: YES with offers, or NO with messages.

    ``expires`` (when the offers lapse) is an extension: the prototype only put it on offers.
    """

    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/offerset/execution-offerset.yaml"
    ] = kinds.OFFERSET
    result: Literal["YES", "NO"]
    description: str | None = None
    expires: IsoInstant | None = None
    offers: list[ExecutionSession] | None = None
