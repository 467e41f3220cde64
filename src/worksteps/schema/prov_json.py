"""Reading PROV-JSON (https://www.w3.org/submissions/prov-json/) as plain data.

Qualified names are expanded with the document's prefixes (plus ``prov``, ``xsd`` and ``rdf``)
so documents that bind the same namespace to different prefixes read the same; attribute values
become Python values (typed literals: ``rdf:JSON`` parsed, ``prov:QUALIFIED_NAME`` expanded,
XSD integers as ``int``). Problems are :class:`ProvenanceError` naming the place in the document.
:mod:`worksteps.schema.provenance` builds Worksteps' own record on this.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "PROV",
    "RDF",
    "XSD",
    "ProvenanceError",
    "QualifiedNames",
    "relations",
    "section",
    "text",
]

PROV: Final = "http://www.w3.org/ns/prov#"
XSD: Final = "http://www.w3.org/2001/XMLSchema#"
RDF: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_DEFAULT_PREFIXES: Final = {"prov": PROV, "xsd": XSD, "rdf": RDF}


class ProvenanceError(ValueError):
    """A document is not a provenance record this module can read; ``where`` points into it."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.where = where


class QualifiedNames:
    """Qualified names of one record, expanded with its prefixes (and prov/xsd/rdf)."""

    def __init__(self, prefixes: Any) -> None:
        self.prefixes = dict(_DEFAULT_PREFIXES)
        if isinstance(prefixes, Mapping):
            self.prefixes.update({str(k): str(v) for k, v in prefixes.items()})

    def expand(self, name: str) -> str:
        prefix, colon, local = name.partition(":")
        if colon and prefix in self.prefixes and not local.startswith("//"):
            return self.prefixes[prefix] + local
        return name

    def literal(self, value: Any, where: str) -> Any:
        """The Python value of an attribute value (a list for a multi-valued one)."""
        if isinstance(value, list):
            return [self.literal(v, where) for v in value]
        if not isinstance(value, Mapping) or "$" not in value:
            return value
        text, kind = value["$"], self.expand(str(value.get("type", "")))
        if kind == RDF + "JSON":
            try:
                return json.loads(str(text))
            except ValueError as exc:
                raise ProvenanceError(f"the rdf:JSON literal is not JSON ({exc})", where) from exc
        if kind == PROV + "QUALIFIED_NAME":
            return self.expand(str(text))
        if kind in (XSD + "int", XSD + "integer", XSD + "long") and isinstance(text, str | int):
            return int(text)
        return text

    def attributes(self, node: Any, where: str) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            raise ProvenanceError("must be an object of attributes", where)
        return {self.expand(str(k)): self.literal(v, f"{where}.{k}") for k, v in node.items()}

    def types(self, attributes: Mapping[str, Any]) -> set[str]:
        found = attributes.get(PROV + "type", [])
        values = found if isinstance(found, list) else [found]
        return {self.expand(v) for v in values if isinstance(v, str)}


def section(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    section = doc.get(name, {})
    if not isinstance(section, Mapping):
        raise ProvenanceError("must be an object", name)
    return dict(section)


def relations(doc: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in section(doc, name).items():
        for item in value if isinstance(value, list) else [value]:
            out.append((f"{name}.{key}", item))
    return out


def text(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None or isinstance(value, Mapping) else str(value)
