"""``worksteps up``: the whole federation on this machine, until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from worksteps.cli.settings_file import fail, invalid, read_mapping

__all__ = ["up"]


def up(
    data_dir: Annotated[
        Path | None, typer.Option(help="State directory (SQLite files, emulators, keys).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface every service listens on.")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="The Science Gateway's port.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Federation YAML: sites, files, images, users."
        ),
    ] = None,
) -> None:
    """Start the whole federation on loopback: three sites (each a broker with emulated
    PrepareData/Rucio, Cavern, Harbor and Skaha), the shared data lake, a development sign-in
    and the user-facing services. Ctrl-C stops everything, sessions included."""
    from worksteps.federation import FederationConfig, start_federation

    values = read_mapping(config)
    given = {"data_dir": data_dir, "host": host, "port": port}
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        federation_config = FederationConfig(**values)
    except ValidationError as exc:
        raise invalid("federation settings", exc) from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    typer.echo("Starting the Worksteps federation…")
    try:
        federation = start_federation(federation_config)
    except (OSError, ValueError) as exc:
        raise fail(f"the federation could not start: {exc}") from None
    try:
        _print(federation.describe(), federation_config.data_dir)
        typer.echo("Ready. Ctrl-C stops everything.")
        stop.wait()
        typer.echo("Stopping (sessions included)…")
    finally:
        federation.stop()
    typer.echo("Stopped.")


def _print(described: dict[str, Any], data_dir: Path) -> None:
    for name, url in described["services"].items():
        typer.echo(f"  {name:12} {url}")
    for site, urls in described["sites"].items():
        typer.echo(f"  {site:12} broker {urls['broker']}  (storage element {urls['rse']})")
    typer.echo(f"  {'rucio':12} {described['rucio']}  (scope '{described['rucio_scope']}')")
    typer.echo(f"  {'registry':12} {described['registry']}")
    typer.echo("  images:      " + ", ".join(described["images"]))
    typer.echo(f"  every address: {data_dir / 'federation.json'}")
