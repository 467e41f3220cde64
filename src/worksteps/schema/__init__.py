"""The IVOA ExecutionBroker v1.0 data model (pydantic v2), its kind URIs and legacy aliases,
ISO 8601 time values and the JSON / YAML / XML codecs.

Documents are validated in the current shape only; :mod:`worksteps.schema.legacy` rewrites
older generations first. Models forbid unknown fields so a misspelling is reported, not lost.
"""

from worksteps.schema.common import (
    ComponentPhase,
    EnumValueOption,
    EnumValueUpdate,
    Message,
    MessageLevel,
    Metadata,
    MinMax,
    SessionPhase,
    Update,
)
from worksteps.schema.documents import (
    Connector,
    ExecutionRequest,
    ExecutionSession,
    OfferSet,
    ScheduledExecutionSession,
    SimpleExecutionSession,
)
from worksteps.schema.legacy import normalize_request, normalize_session, normalize_update

__all__ = [
    "ComponentPhase",
    "Connector",
    "EnumValueOption",
    "EnumValueUpdate",
    "ExecutionRequest",
    "ExecutionSession",
    "Message",
    "MessageLevel",
    "Metadata",
    "MinMax",
    "OfferSet",
    "ScheduledExecutionSession",
    "SessionPhase",
    "SimpleExecutionSession",
    "Update",
    "normalize_request",
    "normalize_session",
    "normalize_update",
]
