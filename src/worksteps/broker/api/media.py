"""Reading request bodies (bounded, any of the three media types) and answering in the one
the client accepts."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError

from worksteps.core.errors import FieldError, InvalidInput, PayloadTooLarge
from worksteps.schema.codecs import MediaType, decode, encode, media_type_of, negotiate

__all__ = ["Body", "read_body", "respond", "validation_problem"]


class Body:
    """A decoded request body and the media type it came in."""

    def __init__(self, document: dict[str, Any], media: MediaType) -> None:
        self.document = document
        self.media = media


async def read_body(request: Request, limit: int) -> Body:
    """Read at most ``limit`` bytes (checked before and while reading) and decode them."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"The body is {declared} bytes; the limit is {limit}.", reason="body-too-large"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"The body exceeds the limit of {limit} bytes.", reason="body-too-large"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    media = media_type_of(request.headers.get("content-type"), raw)
    return Body(decode(raw, media), media)


def _is_tag(part: str) -> bool:
    """Union branch labels pydantic puts in locations (kind URIs, validator names)."""
    return "://" in part or part.startswith(("uri:", "function-"))


def validation_problem(exc: ValidationError, what: str) -> InvalidInput:
    """A pydantic error as a problem document naming each field by its dotted path."""
    errors = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not _is_tag(str(p)))
        errors.append(FieldError(loc or "body", err["msg"]))
    first = errors[0] if errors else FieldError("body", "invalid")
    return InvalidInput(f"The {what} is not valid: {first['field']}: {first['reason']}", errors)


def respond(
    request: Request,
    data: dict[str, Any] | BaseModel,
    *,
    root: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    request_media: MediaType | None = None,
) -> Response:
    """Encode ``data`` in the media type negotiated from the Accept header."""
    media = negotiate(request.headers.get("accept"), request_media)
    doc = data.model_dump(mode="json", exclude_none=True) if isinstance(data, BaseModel) else data
    return Response(
        encode(doc, media, root), status_code=status, media_type=media.value, headers=headers
    )
