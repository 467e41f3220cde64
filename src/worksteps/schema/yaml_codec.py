"""YAML bodies both ways, limited to JSON-like data.

Reading uses a YAML 1.2 core schema: ``yes``/``no``/``on``/``off`` and dates stay strings (the
IVOA ``result: NO`` must not become ``False``, and ``2023-08-09`` must reach the ISO 8601 parser
as text). Mapping keys are kept as written (``on``, ``1`` and ``null`` stay strings). Anchors and
aliases are refused (alias bombs), as are duplicate keys, non-scalar keys and explicit tags
outside the JSON types. Every problem is a :class:`~worksteps.core.errors.BadRequest`; nesting
too deep for the stack surfaces as ``RecursionError``, which the caller turns into its depth
refusal.

Writing is block style in insertion order, and quotes any string that a YAML 1.1 *or* 1.2 reader
would take for something other than text, so ``decode_yaml(encode_yaml(d))`` equals ``d``.
Non-finite floats are refused: they are not JSON-like.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from worksteps.core.errors import BadRequest

__all__ = ["decode_yaml", "encode_yaml"]

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


def decode_yaml(text: str) -> Any:
    """The JSON-like value of one YAML document, or BadRequest saying where it is wrong."""
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


def encode_yaml(data: Mapping[str, Any]) -> bytes:
    """UTF-8 YAML for JSON-like data; ValueError for a non-finite float."""
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=120,
    )
    return text.encode("utf-8")
