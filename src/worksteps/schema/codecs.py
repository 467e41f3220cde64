"""JSON, YAML and XML bodies both ways, chosen by Content-Type and Accept.

Every decoder returns JSON-like data (a ``dict`` at the top, then dicts with ``str`` keys,
lists, ``str``, ``int``, ``float``, ``bool`` and ``None``) or raises
:class:`~worksteps.core.errors.BadRequest` with a message a user can act on. Documents nested
deeper than :data:`MAX_DEPTH` are refused so no decoder can exhaust the stack.

YAML is read with a YAML 1.2 core schema: ``yes``/``no``/``on``/``off`` and dates stay
strings (the IVOA ``result: NO`` must not become ``False``, and ``2023-08-09`` must reach the
ISO 8601 parser as text). Anchors and aliases are refused (alias bombs), as are duplicate keys,
explicit tags outside the JSON types and non-UTF-8 input.

XML is read with defusedxml: no DTDs, no entity declarations, no external references.
XML mapping (our own convention: the IVOA spec declares XML but no implementation emits it):

- A dict is an element with one child per key. A ``kind`` key with a scalar value, and a
  legacy ``type`` key whose value looks like a URI, become attributes of that element.
- A list is a wrapper element named after its key; its items are named by :data:`ITEM_NAMES`
  (``offers`` -> ``execution``, ``command`` -> ``arg`` ...; otherwise ``item``).
- A dict with a key that is not a plain XML name, and the free maps ``environment`` and
  ``values`` (when a dict), are written as ``<entry key="...">value</entry>`` children.
- Scalars are text: booleans ``true``/``false``, numbers as JSON writes them, and they decode
  as strings (the pydantic models coerce them back in lax mode). ``None`` is omitted, in dicts
  and in lists alike.
- Reading an element back (its *shape*), in order: explicit ``shape`` attribute; any other
  attribute -> dict; children that are all ``entry`` elements with a ``key`` -> dict; a field
  whose name is in :data:`ITEM_NAMES` -> list; two or more children all of one name -> list;
  other children -> dict; no children: non-blank text -> string, a list field -> ``[]``,
  otherwise the text (so ``<x/>`` is ``""``). The root is always a dict. The table applies
  to fields only: list items and entry values (``<storage>`` inside ``<storage>``) are read
  by their shape alone.
- The encoder writes ``shape="list"``, ``shape="map"`` or ``shape="text"`` exactly when those
  rules would read the element wrongly (an empty dict, a one-item list outside the table, a
  dict under a list-field name, an empty string under a list-field name), so
  ``decode(encode(d, XML, root), XML)`` equals ``d`` with its scalars written as text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import yaml
from defusedxml.ElementTree import fromstring as safe_fromstring
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from worksteps.core.errors import BadRequest, NotAcceptable, UnsupportedMedia

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
            document = _xml_decode(body)
        else:
            text = _utf8(body, media)
            document = _json_decode(text) if media is MediaType.JSON else _yaml_decode(text)
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
        text = yaml.dump(
            data,
            Dumper=_Dumper,
            default_flow_style=False,
            sort_keys=False,
            allow_unicode=True,
            width=120,
        )
        return text.encode("utf-8")
    return _xml_encode(data, root)


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


# --- YAML ------------------------------------------------------------------------------------

_YAML = "tag:yaml.org,2002:"
_YAML_CORE = [  # YAML 1.2 core schema, without .inf/.nan (not JSON-like)
    (f"{_YAML}null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (f"{_YAML}bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (f"{_YAML}int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        f"{_YAML}float",
        r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
        list("-+.0123456789"),
    ),
]


class _Loader(yaml.BaseLoader):
    """Pure-Python loader: anchors refused while composing, only JSON types constructed."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise BadRequest(
                f"YAML anchors and aliases are not accepted (line {mark.line + 1}, "
                f"column {mark.column + 1}); write the values out in full.",
                reason="yaml-alias",
            )
        return super().compose_node(parent, index)

    def construct_json_mapping(self, node: MappingNode) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            key = str(key_node.value)  # the key as written: 'on', '1' and 'null' stay strings
            if key in result:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            result[key] = self.construct_object(value_node, deep=True)
        return result

    def construct_json_list(self, node: SequenceNode) -> list[Any]:
        return [self.construct_object(child, deep=True) for child in node.value]

    def construct_json_int(self, node: ScalarNode) -> int:
        text = str(node.value)
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        return int(text[2:] if base != 10 else text, base)

    def construct_json_float(self, node: ScalarNode) -> float:
        return float(node.value)

    def construct_json_bool(self, node: ScalarNode) -> bool:
        return str(node.value).lower() == "true"

    def construct_json_null(self, node: ScalarNode) -> None:
        return None

    def construct_json_str(self, node: ScalarNode) -> str:
        return str(node.value)

    def construct_unknown(self, node: Node) -> Any:
        raise ConstructorError(None, None, f"the tag {node.tag} is not accepted", node.start_mark)


for _tag, _pattern, _first in _YAML_CORE:
    _Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)
_Loader.add_constructor(f"{_YAML}map", _Loader.construct_json_mapping)
_Loader.add_constructor(f"{_YAML}seq", _Loader.construct_json_list)
_Loader.add_constructor(f"{_YAML}str", _Loader.construct_json_str)
_Loader.add_constructor(f"{_YAML}int", _Loader.construct_json_int)
_Loader.add_constructor(f"{_YAML}float", _Loader.construct_json_float)
_Loader.add_constructor(f"{_YAML}bool", _Loader.construct_json_bool)
_Loader.add_constructor(f"{_YAML}null", _Loader.construct_json_null)
_Loader.add_constructor(None, _Loader.construct_unknown)


class _Dumper(yaml.SafeDumper):
    """Block style; quotes any string a YAML 1.1 *or* 1.2 reader would take for non-text."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # indent list items under their key

    def represent_text(self, data: str) -> yaml.ScalarNode:
        # PyYAML writes NEL/LS/PS raw in plain and block styles, and reads them back as line
        # breaks: only double quotes (which escape them) keep such text intact.
        if any(ch in data for ch in "\x85\u2028\u2029"):
            style: str | None = '"'
        else:
            style = "|" if "\n" in data else None
        return self.represent_scalar(f"{_YAML}str", data, style=style)

    def represent_finite(self, data: float) -> yaml.ScalarNode:
        if data != data or data in (float("inf"), float("-inf")):
            raise ValueError(f"{data} cannot be written: only finite numbers are JSON-like")
        return super().represent_float(data)


for _tag, _pattern, _first in _YAML_CORE:
    _Dumper.add_implicit_resolver(_tag, re.compile(_pattern), _first)
_Dumper.add_representer(str, _Dumper.represent_text)
_Dumper.add_representer(float, _Dumper.represent_finite)


def _yaml_decode(text: str) -> Any:
    try:
        loader = _Loader(text)  # the reader already refuses unprintable characters
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = ", ".join(p for p in (exc.context, exc.problem) if p) or "syntax error"
        raise BadRequest(
            f"The YAML body is not valid{where}: {problem}.", reason="invalid-yaml"
        ) from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an int past Python's digit limit
        raise BadRequest(f"The YAML body is not valid: {exc}", reason="invalid-yaml") from exc


# --- XML -------------------------------------------------------------------------------------

ITEM_NAMES: dict[str, str] = {
    "offers": "execution",
    "messages": "message",
    "costs": "cost",
    "metrics": "metric",
    "options": "option",
    "storage": "storage",
    "data": "data",
    "volumes": "volume",
    "connectors": "connector",
    "locations": "location",
    "command": "arg",
    "ports": "port",
    "replicas": "replica",
    "addresses": "address",
    "values": "value",
    "resources": "resource",
}
"""List fields and the element name of their items; other lists' items are ``item``."""

_FREE_MAPS = frozenset({"environment", "values"})
_SHAPE = "shape"
_ENTRY = "entry"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)

# Where an element sits decides how it is read: a field of a dict, an item of a list, the
# value of an <entry>, or the document root.
_FIELD, _ITEM, _ENTRY_VALUE, _ROOT = "field", "item", "entry", "root"


def _plain_name(key: str) -> bool:
    return bool(_NAME.fullmatch(key)) and not key.lower().startswith("xml")


def _xml_text(value: Any) -> str:
    if isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = json.dumps(value, allow_nan=False)
    else:
        raise TypeError(f"{type(value).__name__} is not JSON-like and cannot be written as XML")
    bad = _NOT_XML.search(text)
    if bad:
        raise NotAcceptable(
            f"The document contains the character U+{ord(bad.group()):04X}, which XML 1.0 "
            "cannot carry; ask for application/json or application/yaml instead.",
            reason="not-representable-in-xml",
        )
    return text


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value_attrs(elem: Element, role: str) -> dict[str, str]:
    return {
        name: value
        for name, value in elem.attrib.items()
        if not name.startswith("{")
        and name != _SHAPE
        and not (role == _ENTRY_VALUE and name == "key")
    }


def _is_entry_map(children: list[Element]) -> bool:
    return bool(children) and all(
        _local(c.tag) == _ENTRY and c.get("key") is not None for c in children
    )


def _shape(elem: Element, role: str) -> str:
    """How an element is read: ``map``, ``list`` or ``text`` (rules in the module docstring)."""
    if role == _ROOT:
        return "map"
    marked = elem.get(_SHAPE)
    if marked in ("map", "list", "text"):
        return marked
    list_field = role == _FIELD and _local(elem.tag) in ITEM_NAMES
    children = list(elem)
    if _value_attrs(elem, role) or _is_entry_map(children):
        return "map"
    if children:
        names = {_local(c.tag) for c in children}
        return "list" if list_field or (len(children) > 1 and len(names) == 1) else "map"
    if (elem.text or "").strip():
        return "text"
    return "list" if list_field else "text"


def _xml_element(name: str, value: Any, role: str) -> Element:
    elem = Element(name)
    if isinstance(value, Mapping):
        actual = "map"
        if (role == _FIELD and name in _FREE_MAPS) or not all(_plain_name(k) for k in value):
            for key, item in value.items():
                if item is not None:
                    child = _xml_element(_ENTRY, item, _ENTRY_VALUE)
                    child.set("key", _xml_text(key))
                    elem.append(child)
        else:
            for key, item in value.items():
                if item is None:
                    continue
                scalar = not isinstance(item, Mapping | list | tuple)
                if (key == "kind" and scalar) or (
                    key == "type" and isinstance(item, str) and _URI.fullmatch(item)
                ):
                    elem.set(key, _xml_text(item))
                else:
                    elem.append(_xml_element(key, item, _FIELD))
    elif isinstance(value, list | tuple):
        actual = "list"
        item_name = ITEM_NAMES.get(name, "item") if role == _FIELD else "item"
        elem.extend(_xml_element(item_name, item, _ITEM) for item in value if item is not None)
    else:
        actual = "text"
        elem.text = _xml_text(value)
    if _shape(elem, role) != actual:
        elem.set(_SHAPE, actual)
    return elem


def _xml_write(elem: Element, out: list[str]) -> None:
    out.append("<" + elem.tag)
    out.extend(f' {k}="{v.translate(_ATTR_ESCAPES)}"' for k, v in elem.attrib.items())
    if not elem.text and not len(elem):
        out.append("/>")
        return
    out.append(">" + (elem.text or "").translate(_TEXT_ESCAPES))
    for child in elem:
        _xml_write(child, out)
    out.append(f"</{elem.tag}>")


def _xml_encode(data: Mapping[str, Any], root: str) -> bytes:
    if not _plain_name(root):
        raise ValueError(f"{root!r} is not a plain XML element name")
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _xml_write(_xml_element(root, data, _ROOT), out)
    return "".join(out).encode("utf-8")


def _xml_value(elem: Element, role: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _too_deep()
    name, children, shape = _local(elem.tag), list(elem), _shape(elem, role)
    if shape == "text":
        if children:
            raise BadRequest(
                f"<{name}> is marked as text but has child elements.", reason="invalid-xml"
            )
        return elem.text or ""
    if (elem.text or "").strip() or any((c.tail or "").strip() for c in children):
        raise BadRequest(
            f"<{name}> has text where child elements were expected.", reason="invalid-xml"
        )
    if shape == "list":
        return [_xml_value(child, _ITEM, depth + 1) for child in children]
    result: dict[str, Any] = dict(_value_attrs(elem, role))
    entries = _is_entry_map(children)
    for child in children:
        key = child.get("key", "") if entries else _local(child.tag)
        if key in result:
            raise BadRequest(f"<{name}> gives {key!r} more than once.", reason="duplicate-key")
        result[key] = _xml_value(child, _ENTRY_VALUE if entries else _FIELD, depth + 1)
    return result


def _xml_decode(body: bytes) -> Any:
    try:
        root = safe_fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as exc:
        raise BadRequest(
            "XML document type declarations (DTDs) are not accepted.", reason="xml-dtd"
        ) from exc
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        raise BadRequest(
            "XML entity declarations and external references are not accepted.", reason="xml-entity"
        ) from exc
    except ParseError as exc:
        line, column = exc.position
        raise BadRequest(
            f"The XML body is not well-formed at line {line}, column {column + 1}.",
            reason="invalid-xml",
        ) from exc
    return _xml_value(root, _ROOT, 1)
