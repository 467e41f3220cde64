"""Reading web forms and showing their errors next to the fields they concern.

Services report invalid input as :class:`~worksteps.core.errors.InvalidInput` with dotted field
paths (``compute.cores.min``, ``data.2.rucio.scope``). A form renders each input with the path
it feeds; :class:`FieldErrors` hands each input the errors at or under its path, and the form's
summary lists every error (linked to its input when there is one), so nothing is lost.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import Request

from worksteps.core.errors import FieldError, InvalidInput

__all__ = ["FieldErrors", "drop_empty", "field_id", "form_data", "integer", "lines", "words"]


def field_id(path: str) -> str:
    """The HTML id of the input for ``path`` (ids must not contain dots for CSS selectors)."""
    return "f-" + path.replace(".", "-")


class FieldErrors:
    """The errors of one form submission, by field path."""

    def __init__(
        self,
        errors: Iterable[Mapping[str, str]] = (),
        message: str = "",
        inputs: Iterable[str] = (),
    ) -> None:
        self.message = message
        self.items = [
            FieldError(str(e["field"]), str(e["reason"]).removeprefix("Value error, "))
            for e in errors
        ]
        self.inputs = list(inputs)

    @classmethod
    def of(cls, exc: InvalidInput, inputs: Iterable[str]) -> FieldErrors:
        """The errors of ``exc`` for a form whose inputs feed the paths ``inputs``."""
        return cls(exc.errors, exc.detail, inputs)

    def __bool__(self) -> bool:
        return bool(self.items or self.message)

    def owner(self, field: str) -> str | None:
        """The input that shows an error of ``field``: the most specific one at or above it,
        else (an error about a group, like a min/max pair) the first input inside it."""
        above = [p for p in self.inputs if field == p or field.startswith(p + ".")]
        if above:
            return max(above, key=len)
        return next((p for p in self.inputs if p.startswith(field + ".")), None)

    def at(self, path: str) -> list[str]:
        """The reasons to show beside the input of ``path``."""
        return [
            f"{e['field'][len(path) + 1 :]}: {e['reason']}"
            if e["field"].startswith(path + ".")
            else e["reason"]
            for e in self.items
            if self.owner(e["field"]) == path
        ]

    def summary(self) -> list[dict[str, str | None]]:
        """Every error, with the id of the input that shows it (when one does)."""
        result: list[dict[str, str | None]] = []
        for error in self.items:
            owner = self.owner(error["field"])
            target = field_id(owner) if owner else None
            result.append({"field": error["field"], "reason": error["reason"], "target": target})
        return result


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form's text fields (files are not accepted by these pages)."""
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


def integer(form: Mapping[str, str], name: str, errors: list[FieldError]) -> int | None:
    """The integer in field ``name`` (empty: None); a non-number is a field error."""
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors.append(FieldError(name, "must be a whole number"))
        return None


def lines(text: str) -> list[str]:
    """The non-empty lines of a textarea (one data reference per line)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def words(text: str, name: str, errors: list[FieldError]) -> list[str] | None:
    """A command line split as a shell would (quotes respected); empty: None."""
    if not text.strip():
        return None
    try:
        return shlex.split(text)
    except ValueError as exc:
        errors.append(FieldError(name, f"cannot be split into words: {exc}"))
        return None


def drop_empty(value: Any) -> Any:
    """``value`` without the None, empty-string and empty-dict members (recursively)."""
    if isinstance(value, dict):
        cleaned = {k: drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", {}, [])}
    return value
