"""Reading a command's settings file and reporting bad settings, the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError

__all__ = ["fail", "invalid", "read_mapping"]


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the result (exit code 2)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def read_mapping(path: Path | None) -> dict[str, Any]:
    """The YAML mapping in ``path`` ({} when None); a readable error otherwise."""
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"cannot read {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise fail(f"{path} must hold a mapping of settings")
    return loaded


def invalid(what: str, exc: ValidationError) -> typer.Exit:
    """The fields at fault, one per line."""
    lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return fail(f"invalid {what}:\n" + "\n".join(lines))
