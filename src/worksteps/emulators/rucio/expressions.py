"""RSE expressions, the small set language Rucio uses to say where replicas must go.

    expression := term (operator term)*        evaluated left to right, as Rucio does
    operator   := "|" union  |  "&" intersection  |  "\\" difference
    term       := "(" expression ")" | "*" | key "=" value | key "<" number | key ">" number
                | word                            an RSE name, or a key whose value is true

Every RSE carries the attributes ``<its name>=True``, ``site`` and ``rse_type`` besides its
configured ones. An expression that selects nothing is an error, as in Rucio.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["InvalidRSEExpression", "resolve"]

Attributes = Mapping[str, str | int | float | bool]

_TOKEN = re.compile(r"\s*(\(|\)|\||&|\\|[^()|&\\\s]+)")
_COMPARISON = re.compile(r"^([A-Za-z0-9._-]+)([=<>])(.+)$")


class InvalidRSEExpression(ValueError):
    """The expression is malformed or selects no RSE."""


def resolve(expression: str, rses: Mapping[str, Attributes]) -> list[str]:
    """The names of the RSEs ``expression`` selects, in name order."""
    tokens = _tokenize(expression)
    parser = _Parser(tokens, rses)
    selected = parser.expression()
    if parser.pos != len(tokens):
        raise InvalidRSEExpression(f"unexpected {tokens[parser.pos]!r} in {expression!r}")
    if not selected:
        raise InvalidRSEExpression(f"RSE Expression resulted in an empty set: {expression!r}")
    return sorted(selected)


def _tokenize(expression: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = expression.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidRSEExpression(f"cannot read {expression!r} at {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    if not tokens:
        raise InvalidRSEExpression("empty RSE expression")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], rses: Mapping[str, Attributes]) -> None:
        self.tokens = tokens
        self.rses = rses
        self.pos = 0

    def expression(self) -> set[str]:
        result = self.term()
        while self.pos < len(self.tokens) and self.tokens[self.pos] in ("|", "&", "\\"):
            operator = self.tokens[self.pos]
            self.pos += 1
            right = self.term()
            if operator == "|":
                result = result | right
            elif operator == "&":
                result = result & right
            else:
                result = result - right
        return result

    def term(self) -> set[str]:
        if self.pos >= len(self.tokens):
            raise InvalidRSEExpression("expression ends where a term was expected")
        token = self.tokens[self.pos]
        self.pos += 1
        if token == "(":
            inner = self.expression()
            if self.pos >= len(self.tokens) or self.tokens[self.pos] != ")":
                raise InvalidRSEExpression("missing ')'")
            self.pos += 1
            return inner
        if token in (")", "|", "&", "\\"):
            raise InvalidRSEExpression(f"unexpected {token!r}")
        if token == "*":
            return set(self.rses)
        comparison = _COMPARISON.match(token)
        if comparison is None:
            return {name for name, attrs in self.rses.items() if attrs.get(token) is True}
        key, operator, value = comparison.groups()
        return {name for name, attrs in self.rses.items() if _compare(attrs, key, operator, value)}


def _compare(attrs: Attributes, key: str, operator: str, value: str) -> bool:
    if key not in attrs:
        return False
    actual = attrs[key]
    if operator == "=":
        if isinstance(actual, bool):
            return value.lower() in (("true", "1") if actual else ("false", "0"))
        return str(actual) == value
    try:
        number, wanted = float(actual), float(value)
    except (TypeError, ValueError):
        return False
    return number < wanted if operator == "<" else number > wanted
