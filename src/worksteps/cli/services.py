"""``worksteps serve editor|execution|gateway``: each user-facing service as its own process,
configured for production from the environment (``WORKSTEPS_EDITOR_…``,
``WORKSTEPS_EXECUTION_…``, ``WORKSTEPS_GATEWAY_…``) or a YAML file of the same fields.

Settings that are missing or unsafe (no issuer, the default cookie secret outside dev mode)
stop the command with a message naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from pydantic import BaseModel, ValidationError

from worksteps.cli.settings_file import fail, invalid, read_mapping
from worksteps.core.serving import GRACE

__all__ = ["register"]

S = TypeVar("S", bound=BaseModel)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Config = Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="Settings (YAML).")]


def _settings(kind: type[S], config: Path | None, section: str | None = None) -> S:
    values = read_mapping(config)
    if section:
        values = values.get(section) or {}
        if not isinstance(values, dict):
            raise fail(f"{config}: '{section}' must hold a mapping of settings")
    try:
        return kind(**values)
    except ValidationError as exc:
        raise invalid(kind.__name__, exc) from None


def serve_editor(host: Host = "127.0.0.1", port: int = 8081, config: Config = None) -> None:
    """Run the Workstep Editor (its JSON API) on its own."""
    from worksteps.editor.api import create_app
    from worksteps.editor.settings import EditorSettings

    settings = _settings(EditorSettings, config)
    typer.echo(f"Workstep Editor on http://{host}:{port}/docs")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=GRACE,
    )


def serve_execution(host: Host = "127.0.0.1", port: int = 8083, config: Config = None) -> None:
    """Run the Workstep Execution service (the Global Execution API) on its own."""
    from worksteps.execution.api import create_app
    from worksteps.execution.settings import ExecutionSettings

    settings = _settings(ExecutionSettings, config)
    typer.echo(f"Workstep Execution on http://{host}:{port}/docs")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=GRACE,
    )


def serve_gateway(host: Host = "127.0.0.1", port: int = 8080, config: Config = None) -> None:
    """Run the Science Gateway with the editor and the execution service inside it.

    The YAML file has three sections, ``gateway``, ``editor`` and ``execution``, each the
    fields of that service's settings (or use the environment variables)."""
    from worksteps.core.database import Database
    from worksteps.editor.fetch import Fetcher
    from worksteps.editor.service import EditorService
    from worksteps.editor.settings import EditorSettings
    from worksteps.editor.store import WorkstepStore
    from worksteps.editor.templates import Catalogue
    from worksteps.execution.api import build_registry
    from worksteps.execution.registry import SitesFileError
    from worksteps.execution.service import ExecutionService
    from worksteps.execution.settings import ExecutionSettings
    from worksteps.gateway.app import create_app
    from worksteps.gateway.settings import GatewaySettings

    gateway = _settings(GatewaySettings, config, "gateway")
    editor_settings = _settings(EditorSettings, config, "editor")
    execution_settings = _settings(ExecutionSettings, config, "execution")
    try:
        registry = build_registry(execution_settings)
    except SitesFileError as exc:
        raise fail(str(exc)) from None
    editor = EditorService(
        editor_settings,
        WorkstepStore(Database(editor_settings.database_url)),
        Fetcher(editor_settings.fetch),
        Catalogue.load(editor_settings.templates_path),
    )
    execution = ExecutionService(execution_settings, registry)
    typer.echo(f"Science Gateway on http://{host}:{port}/ (API: /api, /docs)")
    app = create_app(gateway, editor=editor, execution=execution)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=GRACE)


def register(serve: typer.Typer) -> None:
    serve.command("editor")(serve_editor)
    serve.command("execution")(serve_execution)
    serve.command("gateway")(serve_gateway)
