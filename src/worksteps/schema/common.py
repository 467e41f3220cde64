"""Shared blocks of the ExecutionBroker model: metadata, messages, options, updates, costs,
metrics, lifecycle phases and schedules.

Every model forbids unknown fields, so a misspelt field is reported instead of ignored; legacy
shapes are rewritten to the current one by :mod:`worksteps.schema.legacy` before validation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worksteps.schema.isotypes import IsoDuration, IsoInstant, IsoInterval

__all__ = [
    "Component",
    "ComponentPhase",
    "Cost",
    "EnumValueOption",
    "EnumValueUpdate",
    "IntegerDeltaOption",
    "IntegerDeltaUpdate",
    "IntegerValueOption",
    "IntegerValueUpdate",
    "LifecycleComponent",
    "Message",
    "MessageLevel",
    "Metadata",
    "Metric",
    "MinMax",
    "Option",
    "Schedule",
    "ScheduleInstant",
    "ScheduleInterval",
    "SessionPhase",
    "StringValueOption",
    "StringValueUpdate",
    "Update",
    "WireModel",
]


def _number_too(node: Any) -> None:
    """Let a plain string in a JSON schema also be a number, and so in its parts."""
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not node.keys() & {"format", "const", "enum", "pattern"}:
        del node["type"]
        node["anyOf"] = [{"type": "string"}, {"type": "number"}]
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for part in node.get(key, []):
            _number_too(part)
    _number_too(node.get("items"))
    _number_too(node.get("additionalProperties"))


def _say_numbers_are_strings(schema: dict[str, Any]) -> None:
    """The JSON schema says what validation does (``coerce_numbers_to_str``): a number is
    taken as its text where a plain string is expected, as YAML and the captured examples
    write versions and names (``version: 1.0``). Instants, durations, kinds and enums stay
    strings only: a number is refused there."""
    for prop in schema.get("properties", {}).values():
        _number_too(prop)


class WireModel(BaseModel):
    """Base of every document on the wire: strict about names, lax about scalar types."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        coerce_numbers_to_str=True,
        frozen=False,
        json_schema_extra=_say_numbers_are_strings,
    )


class ComponentPhase(StrEnum):
    INITIALIZING = "INITIALIZING"
    WAITING = "WAITING"
    PREPARING = "PREPARING"
    AVAILABLE = "AVAILABLE"
    RUNNING = "RUNNING"
    RELEASING = "RELEASING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class SessionPhase(StrEnum):
    INITIAL = "INITIAL"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    WAITING = "WAITING"
    PREPARING = "PREPARING"
    AVAILABLE = "AVAILABLE"
    RUNNING = "RUNNING"
    RELEASING = "RELEASING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class MessageLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    OTHER = "OTHER"


class Message(WireModel):
    """A message-template log item (https://messagetemplates.org/)."""

    kind: str | None = None
    time: IsoInstant | None = None
    level: MessageLevel | None = None
    template: str | None = None
    values: dict[str, str] | None = None
    message: str | None = None


class StringValueOption(WireModel):
    kind: Literal["uri:string-value-option"] = "uri:string-value-option"
    path: str
    pattern: str | None = None


class EnumValueOption(WireModel):
    kind: Literal["uri:enum-value-option"] = "uri:enum-value-option"
    path: str
    values: list[str]


class IntegerValueOption(WireModel):
    kind: Literal["uri:integer-value-option"] = "uri:integer-value-option"
    path: str
    min: int | None = None
    max: int | None = None
    units: str | None = None


class IntegerDeltaOption(WireModel):
    kind: Literal["uri:integer-delta-option"] = "uri:integer-delta-option"
    path: str
    min: int | None = None
    max: int | None = None
    units: str | None = None


Option = Annotated[
    StringValueOption | EnumValueOption | IntegerValueOption | IntegerDeltaOption,
    Field(discriminator="kind"),
]


class StringValueUpdate(WireModel):
    kind: Literal["uri:string-value-update"]
    path: str
    value: str


class EnumValueUpdate(WireModel):
    kind: Literal["uri:enum-value-update"]
    path: str
    value: str


class IntegerValueUpdate(WireModel):
    kind: Literal["uri:integer-value-update"]
    path: str
    value: int
    units: str | None = None


class IntegerDeltaUpdate(WireModel):
    kind: Literal["uri:integer-delta-update"]
    path: str
    delta: int
    units: str | None = None


Update = Annotated[
    StringValueUpdate | EnumValueUpdate | IntegerValueUpdate | IntegerDeltaUpdate,
    Field(discriminator="kind"),
]


class Metadata(WireModel):
    uuid: UUID | None = None
    name: str | None = Field(None, max_length=256)
    url: str | None = None
    description: str | None = Field(None, max_length=16384)
    created: IsoInstant | None = None
    modified: IsoInstant | None = None
    messages: list[Message] | None = None
    options: list[Option] | None = None


class Cost(WireModel):
    """A min/max float cost; ``type`` is the meaning (monetary, energy, carbon…)."""

    kind: str
    type: str | None = None
    description: str | None = None
    min: float | None = None
    max: float | None = None


class Metric(WireModel):
    """A min/max float metric; ``type`` is the meaning (compute performance, I/O…)."""

    kind: str
    type: str | None = None
    description: str | None = None
    min: float | None = None
    max: float | None = None


class Component(WireModel):
    """Every component: a kind, metadata, costs and metrics."""

    kind: str
    meta: Metadata | None = None
    costs: list[Cost] | None = None
    metrics: list[Metric] | None = None


class ScheduleInstant(WireModel):
    start: IsoInstant | None = None
    duration: IsoDuration | None = None


class ScheduleInterval(WireModel):
    start: IsoInterval | None = None
    duration: IsoDuration | None = None


class Schedule(WireModel):
    preparing: ScheduleInstant | None = None
    available: ScheduleInterval | None = None
    releasing: ScheduleInstant | None = None


class LifecycleComponent(Component):
    phase: ComponentPhase | None = None
    schedule: Schedule | None = None


_LIMIT = 2**31 - 1


class MinMax(WireModel):
    """An integer range: ``min`` is what the execution needs, ``max`` the most it can use."""

    min: int | None = Field(None, ge=0, le=_LIMIT)
    max: int | None = Field(None, ge=0, le=_LIMIT)
    units: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> MinMax:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self
