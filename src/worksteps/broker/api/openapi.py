"""What the broker's OpenAPI document says beyond what FastAPI infers from the routes.

The routes read their bodies themselves (JSON, YAML or XML, chosen by ``Content-Type``; see
:mod:`worksteps.broker.api.media`), so FastAPI knows nothing of them: each names its body
here (an IVOA ``ExecutionRequest`` or an update, as the pydantic models of
:mod:`worksteps.schema` define them), and :func:`describe_broker` puts those models in the
document's components. The event stream is ``text/event-stream``, and every error is an RFC
9457 problem document (:func:`worksteps.core.openapi.document_problems`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from worksteps.core.openapi import document_problems
from worksteps.schema.common import Update
from worksteps.schema.documents import ExecutionRequest

__all__ = ["EVENT_STREAM", "EXECUTION_REQUEST_BODY", "UPDATE_BODY", "describe_broker"]

_PREFIX = "#/components/schemas/"
_schemas, _definitions = TypeAdapter.json_schemas(
    [
        ("ExecutionRequest", "validation", TypeAdapter(ExecutionRequest)),
        ("Update", "validation", TypeAdapter(Update)),
    ],
    ref_template=_PREFIX + "{model}",
)
_COMPONENTS: dict[str, Any] = dict(_definitions.get("$defs", {}))
_COMPONENTS["Update"] = _schemas[("Update", "validation")]
_OTHER_MEDIA = (
    " The body may also be YAML (`application/yaml`) or XML (`application/xml`) of the same "
    "document; the answer comes in the type the `Accept` header asks for (YAML by default)."
)


def _body(schema: str, description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description + _OTHER_MEDIA,
        "content": {"application/json": {"schema": {"$ref": _PREFIX + schema}}},
    }


EXECUTION_REQUEST_BODY = _body(
    "ExecutionRequest",
    "An IVOA ExecutionRequest: the executable, compute, storage, data and schedule wanted. "
    "The kinds and shapes of earlier versions of the IVOA schema are accepted too.",
)
UPDATE_BODY = _body(
    "Update",
    "An IVOA update: `uri:enum-value-update` of `phase` to ACCEPTED, REJECTED or CANCELLED.",
)
EVENT_STREAM: dict[str, Any] = {
    "description": "The session's events (`phase`, `step`, `progress`) from the log, as they "
    "happen; the stream ends once the session has ended and its events are sent. `id` is the "
    "event's number in the session's log, for `Last-Event-ID` or `after`.",
    "content": {
        "text/event-stream": {
            "schema": {  # one event
                "type": "object",
                "required": ["data"],
                "properties": {
                    "event": {"type": "string", "description": "phase, step, progress"},
                    "id": {"type": "string"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"type": "object"},
                    },
                    "retry": {"type": "integer"},
                },
            }
        }
    },
}


def describe_broker(app: FastAPI) -> None:
    """Put the body models in ``app``'s document and describe its problem answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in _COMPONENTS.items():
            schemas.setdefault(name, schema)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    document_problems(app)
