"""The body of ``POST /executions``, checked before anything is sent to any broker.

``{"request": <ExecutionRequest>, "workstep": {uuid, version, name}, "deadline": s,
"sites": [names]}`` or ``{"workstep_url": URL, ...}``: then the request is ``GET
{workstep_url}/request`` at the Workstep Editor, with the caller's token. That URL must start
with one of the configured editor URLs (the token goes there), redirects are not followed and
the answer is bounded like a request body (``max_body_bytes``). A bad body or request is
:class:`InvalidInput` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from worksteps.core.auth import Principal
from worksteps.core.errors import FieldError, InvalidInput
from worksteps.execution.brokers import BrokerAnswerInvalid, read_json
from worksteps.execution.settings import ExecutionSettings
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.legacy import normalize_request
from worksteps.schema.provenance import WorkstepRef

__all__ = ["ExecuteBody", "Intake", "take_in"]


class ExecuteBody(BaseModel):
    """What a caller sends to run a workstep."""

    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any] | None = Field(None, description="An IVOA ExecutionRequest.")
    workstep: WorkstepRef | None = Field(None, description="The workstep this request is.")
    workstep_url: str | None = Field(
        None, max_length=2048, description="A workstep of the Workstep Editor, instead."
    )
    deadline: float | None = Field(None, gt=0, description="Seconds each broker has.")
    sites: list[str] | None = Field(
        None, min_length=1, description="Ask only these sites (default: every site)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.request is None) == (self.workstep_url is None):
            raise ValueError("give either request or workstep_url")
        return self


@dataclass
class Intake:
    request: ExecutionRequest
    document: dict[str, Any]  # what is sent to the brokers
    workstep: dict[str, Any] | None
    deadline: float
    sites: list[str] | None


def _is_tag(part: str) -> bool:
    """Union branch labels pydantic puts in locations (kind URIs, validator names)."""
    return "://" in part or part.startswith(("uri:", "function-"))


def _errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        parts = [
            str(p) for p in err["loc"] if "://" not in str(p) and not str(p).startswith("function-")
        ]
        out.append(FieldError(".".join([prefix, *parts]).strip(".") or "body", err["msg"]))
    return out


def _refuse(field: str, reason: str, slug: str = "invalid-input") -> InvalidInput:
    return InvalidInput(f"{field}: {reason}", [FieldError(field, reason)], reason=slug)


def _execution_request(document: Any, field: str) -> ExecutionRequest:
    if not isinstance(document, dict):
        raise _refuse(field, "must be a JSON object (an ExecutionRequest)")
    try:
        parsed = ExecutionRequest.model_validate(normalize_request(document))
    except ValidationError as exc:
        errors = _errors(exc, field)
        raise InvalidInput(
            f"The execution request is not valid: {errors[0]['field']}: {errors[0]['reason']}",
            errors,
        ) from None
    if parsed.executable is None:
        raise _refuse(f"{field}.executable", "an executable is required")
    return parsed


async def _fetch_request(
    url: str, settings: ExecutionSettings, client: httpx.AsyncClient, principal: Principal
) -> Any:
    field = "workstep_url"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise _refuse(field, "is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _refuse(field, "must be an http(s) URL")
    if not any(url.startswith(base.rstrip("/") + "/") for base in settings.editor_urls):
        raise _refuse(
            field, "is not a workstep of a known Workstep Editor", "untrusted-workstep-url"
        )
    target = url.rstrip("/") + "/request"
    try:
        async with client.stream(
            "GET",
            target,
            headers={"Accept": "application/json"} | principal.authorization,
            timeout=settings.fetch_timeout,
            follow_redirects=False,
        ) as answer:
            if answer.status_code != 200:
                raise _refuse(
                    field,
                    f"GET {target} answered HTTP {answer.status_code}",
                    "workstep-unavailable",
                )
            return await read_json(answer, settings.max_body_bytes)
    except BrokerAnswerInvalid as exc:
        raise _refuse(field, f"GET {target}: {exc.detail}", "workstep-unavailable") from None
    except httpx.HTTPError as exc:
        raise _refuse(
            field, f"GET {target} failed: {type(exc).__name__}", "workstep-unavailable"
        ) from None


async def take_in(
    body: Any, settings: ExecutionSettings, client: httpx.AsyncClient, principal: Principal
) -> Intake:
    """The checked execution request of a ``POST /executions`` body, or InvalidInput."""
    try:
        given = ExecuteBody.model_validate(body)
    except ValidationError as exc:
        errors = _errors(exc)
        raise InvalidInput(
            f"The body is not valid: {errors[0]['field']}: {errors[0]['reason']}", errors
        ) from None
    deadline = given.deadline if given.deadline is not None else settings.deadline
    if deadline > settings.max_deadline:
        raise _refuse("deadline", f"must be at most {settings.max_deadline:g} seconds")
    workstep: dict[str, Any] | None = None
    if given.workstep is not None:
        workstep = given.workstep.model_dump(mode="json", exclude_none=True)
    if given.workstep_url is not None:
        document = await _fetch_request(given.workstep_url, settings, client, principal)
        request = _execution_request(document, "workstep_url")
        workstep = (workstep or {}) | {"url": given.workstep_url}
    else:
        request = _execution_request(given.request, "request")
    return Intake(
        request=request,
        document=request.model_dump(mode="json", exclude_none=True),
        workstep=workstep,
        deadline=deadline,
        sites=given.sites,
    )
