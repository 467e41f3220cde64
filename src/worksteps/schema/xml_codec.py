"""XML bodies both ways, mapped to and from JSON-like data.

Reading uses defusedxml: no DTDs, no entity declarations, no external references; every problem
is a :class:`~worksteps.core.errors.BadRequest`, except nesting deeper than the caller's limit,
which raises ``RecursionError`` as running out of stack would (the caller owns the depth refusal).
Writing refuses, with :class:`~worksteps.core.errors.NotAcceptable`, any character XML 1.0
cannot carry.

The mapping is our own convention (the IVOA spec declares XML but no implementation emits it):

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
  ``decode_xml(encode_xml(d, root))`` equals ``d`` with its scalars written as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml.ElementTree import fromstring as safe_fromstring

from worksteps.core.errors import BadRequest, NotAcceptable

__all__ = ["ITEM_NAMES", "decode_xml", "encode_xml"]

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


def encode_xml(data: Mapping[str, Any], root: str) -> bytes:
    """UTF-8 XML for JSON-like data under a root element named ``root`` (a plain XML name)."""
    if not _plain_name(root):
        raise ValueError(f"{root!r} is not a plain XML element name")
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _xml_write(_xml_element(root, data, _ROOT), out)
    return "".join(out).encode("utf-8")


def _xml_value(elem: Element, role: str, depth: int, max_depth: int) -> Any:
    if depth > max_depth:
        raise RecursionError(f"the XML body is nested deeper than {max_depth} levels")
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
        return [_xml_value(child, _ITEM, depth + 1, max_depth) for child in children]
    result: dict[str, Any] = dict(_value_attrs(elem, role))
    entries = _is_entry_map(children)
    child_role = _ENTRY_VALUE if entries else _FIELD
    for child in children:
        key = child.get("key", "") if entries else _local(child.tag)
        if key in result:
            raise BadRequest(f"<{name}> gives {key!r} more than once.", reason="duplicate-key")
        result[key] = _xml_value(child, child_role, depth + 1, max_depth)
    return result


def decode_xml(body: bytes, max_depth: int) -> dict[str, Any]:
    """The JSON-like mapping of an XML document, or BadRequest saying what is wrong.

    Elements nested deeper than ``max_depth`` (the root is level 1) raise ``RecursionError``,
    as running out of stack would, so the caller has one place that turns depth into a refusal.
    """
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
    document: dict[str, Any] = _xml_value(root, _ROOT, 1, max_depth)
    return document
