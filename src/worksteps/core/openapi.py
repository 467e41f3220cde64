"""What a service's OpenAPI document says about its errors: RFC 9457 problem documents.

Every error a service answers is an ``application/problem+json`` document (see
:mod:`worksteps.core.errors`), but FastAPI describes only a 422 of its own shape
(``HTTPValidationError`` as ``application/json``), which no route ever sends. After
:func:`document_problems` the document says what really happens:

- every 4xx answer of every operation is a ``Problem`` (the ``4XX`` range, plus any status a
  route names itself, such as 429 with ``Retry-After``);
- 422 is a ``Problem`` with ``errors: [{field, reason}]``;
- FastAPI's unused ``HTTPValidationError`` and ``ValidationError`` schemas are gone.

A 5xx is never described: a service must not answer one for anything a caller sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from worksteps.core.errors import PROBLEM_MEDIA_TYPE

__all__ = ["PROBLEM_SCHEMA", "document_problems"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document, with a machine `reason` and, for invalid "
    "fields, `errors`.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "reason": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "retryAfter": {"type": "integer", "minimum": 0},
    },
}

_REF = {"$ref": "#/components/schemas/Problem"}
_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": _REF}}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _is_error(status: str) -> bool:
    return status[:1] in ("4", "5")


def _describe(schema: dict[str, Any]) -> dict[str, Any]:
    for item in schema.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if _is_error(status):
                    response["content"] = dict(_CONTENT)
            if "422" in responses:
                responses["422"]["description"] = "Invalid input: the fields at fault in `errors`."
            responses.setdefault(
                "4XX", {"description": "Refused: a problem document.", "content": dict(_CONTENT)}
            )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return schema


def document_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document describe its error answers as problem documents."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _describe(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
