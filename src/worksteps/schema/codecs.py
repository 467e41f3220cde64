"""JSON, YAML and XML bodies both ways, chosen by Content-Type and Accept.

Every decoder returns JSON-like data (a ``dict`` at the top, then dicts with ``str`` keys,
lists, ``str``, ``int``, ``float``, ``bool`` and ``None``) or raises
:class:`~worksteps.core.errors.BadRequest` with a message a user can act on. Documents nested
deeper than :data:`MAX_DEPTH` are refused so no decoder can exhaust the stack; lone surrogates,
non-finite numbers and (for JSON and YAML) non-UTF-8 input are refused too. JSON refuses
duplicate keys and ``NaN``/``Infinity``.

This module chooses the format and checks what every decoder returns; the YAML rules live in
:mod:`worksteps.schema.yaml_codec` and the XML mapping in :mod:`worksteps.schema.xml_codec`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from worksteps.core.errors import BadRequest, NotAcceptable, UnsupportedMedia
from worksteps.schema.xml_codec import ITEM_NAMES, decode_xml, encode_xml
from worksteps.schema.yaml_codec import decode_yaml, encode_yaml

__all__ = [
    "ITEM_NAMES",
    "MAX_DEPTH",
    "MediaType",
    "decode",
    "encode",
    "media_type_of",
    "negotiate",
]

MAX_DEPTH = 64


class MediaType(StrEnum):
    """The body formats every Worksteps API speaks."""

    JSON = "application/json"
    YAML = "application/yaml"
    XML = "application/xml"


_ALIASES: dict[str, MediaType] = {
    "application/json": MediaType.JSON,
    "application/yaml": MediaType.YAML,
    "application/x-yaml": MediaType.YAML,
    "text/yaml": MediaType.YAML,
    "text/x-yaml": MediaType.YAML,
    "application/xml": MediaType.XML,
    "text/xml": MediaType.XML,
}
_SUFFIXES = {"+json": MediaType.JSON, "+yaml": MediaType.YAML, "+xml": MediaType.XML}
_OFFERED = ", ".join(MediaType)


# --- choosing the format ---------------------------------------------------------------------


def media_type_of(content_type: str | None, body: bytes) -> MediaType:
    """The format of a request body: its Content-Type (parameters ignored), else sniffed."""
    if content_type is None or not content_type.strip():
        head = body.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
        if head in (b"{", b"["):
            return MediaType.JSON
        return MediaType.XML if head == b"<" else MediaType.YAML
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence in _ALIASES:
        return _ALIASES[essence]
    if essence.startswith("application/"):
        for suffix, media in _SUFFIXES.items():
            if essence.endswith(suffix):
                return media
    raise UnsupportedMedia(
        f"Content-Type {content_type!r} is not supported; send one of {_OFFERED}.",
        reason="unsupported-media-type",
        extra={"supported": list(MediaType)},
    )


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """``(range, q)`` pairs of an Accept header; malformed ranges and q-values are skipped."""
    ranges = []
    for part in accept.split(","):
        essence, *params = (p.strip() for p in part.split(";"))
        essence = "*/*" if essence == "*" else essence.lower()
        if essence.count("/") != 1:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            ranges.append((essence, q))
    return ranges


def negotiate(accept: str | None, request_type: MediaType | None = None) -> MediaType:
    """The response format for an Accept header (RFC 9110 q-values, most specific range wins).

    No usable header means YAML, the IVOA default. A wildcard prefers the request's own format, then
    JSON. Among explicit matches of equal q the one listed first wins.
    """
    ranges = _media_ranges(accept or "")
    if not ranges:  # absent, empty or unreadable: RFC 9110 lets us ignore it
        return MediaType.YAML
    wildcard_order = [request_type] if request_type else []
    wildcard_order += [m for m in MediaType if m != request_type]
    best: tuple[float, int, int, int] | None = None
    chosen: MediaType | None = None
    for media in MediaType:
        names = [n for n, m in _ALIASES.items() if m == media]
        match: tuple[int, float, int] | None = None  # (specificity, q, -position)
        for position, (essence, q) in enumerate(ranges):
            major = essence.split("/")[0]
            if essence in names:
                specificity = 3
            elif essence.endswith("/*") and any(n.startswith(major + "/") for n in names):
                specificity = 2
            elif essence == "*/*":
                specificity = 1
            else:
                continue
            candidate = (specificity, q, -position)
            if match is None or candidate > match:
                match = candidate
        if match is None or match[1] <= 0:
            continue
        rank = (match[1], match[0], match[2], -wildcard_order.index(media))
        if best is None or rank > best:
            best, chosen = rank, media
    if chosen is None:
        raise NotAcceptable(
            f"None of the media types in Accept {accept!r} can be produced; "
            f"this service offers {_OFFERED}.",
            reason="not-acceptable",
            extra={"offered": list(MediaType)},
        )
    return chosen


# --- decode / encode dispatch ----------------------------------------------------------------


def decode(body: bytes, media: MediaType) -> dict[str, Any]:
    """Read a body into a JSON-like mapping, or raise BadRequest saying what is wrong."""
    try:
        if media is MediaType.XML:
            document = decode_xml(body, MAX_DEPTH)
        else:
            text = _utf8(body, media)
            document = _json_decode(text) if media is MediaType.JSON else decode_yaml(text)
    except RecursionError as exc:
        raise _too_deep() from exc
    if not isinstance(document, dict):
        found = "nothing" if document is None else f"a {type(document).__name__}"
        raise BadRequest(
            f"The {media.name} body must be a mapping (an object) at the top level; found {found}.",
            reason="not-a-mapping",
        )
    _check_tree(document)
    return document


def encode(data: Mapping[str, Any], media: MediaType, root: str) -> bytes:
    """Write JSON-like data; ``root`` names the XML root element (ignored otherwise)."""
    if media is MediaType.JSON:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")
    if media is MediaType.YAML:
        return encode_yaml(data)
    return encode_xml(data, root)


def _utf8(body: bytes, media: MediaType) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"The {media.name} body is not valid UTF-8 (bad byte at offset {exc.start}).",
            reason="not-utf8",
        ) from exc


def _too_deep() -> BadRequest:
    return BadRequest(f"The body is nested deeper than {MAX_DEPTH} levels.", reason="too-deep")


def _check_tree(document: dict[str, Any]) -> None:
    """Depth limit; no lone surrogates (JSON ``\\ud800``) nor overflowing floats (``1e999``)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise BadRequest("The body contains a lone UTF-16 surrogate.", reason="bad-string")
        elif isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(
                "The body contains a number too large for a float.", reason="bad-number"
            )


_SURROGATE = re.compile("[\ud800-\udfff]")


# --- JSON ------------------------------------------------------------------------------------


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest(f"Duplicate key {key!r} in a JSON object.", reason="duplicate-key")
        result[key] = value
    return result


def _json_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number.", reason="invalid-json")


def _json_decode(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"The JSON body is not valid at line {exc.lineno}, column {exc.colno}: {exc.msg}.",
            reason="invalid-json",
        ) from exc
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise BadRequest(f"The JSON body is not valid: {exc}", reason="invalid-json") from exc
