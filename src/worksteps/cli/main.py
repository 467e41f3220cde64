"""``worksteps``: run the services (``serve``) and, later, work with worksteps from a terminal.

Every option has an environment variable twin (``WORKSTEPS_BROKER_…``); options win.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from worksteps.cli.services import register as register_services
from worksteps.cli.settings_file import invalid, read_mapping
from worksteps.cli.up import up
from worksteps.cli.user import register
from worksteps.core.serving import GRACE
from worksteps.schema.isotime import IsoTimeError, parse_duration

__all__ = ["app"]

app = typer.Typer(
    name="worksteps",
    help="Worksteps: from data and software to a running session at the best SRCNet site.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
serve = typer.Typer(help="Run one component as its own process.", no_args_is_help=True)
app.add_typer(serve, name="serve")
app.command("up")(up)
register(app)
register_services(serve)


def _duration(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except IsoTimeError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@serve.command("broker")
def serve_broker(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8082,
    config: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Site settings (YAML).")
    ] = None,
    site: Annotated[str | None, typer.Option(help="Site name.")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="sqlite:///PATH (default data/broker.sqlite) or postgresql://…"),
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Public base URL for links.")] = None,
    cores: Annotated[int | None, typer.Option(min=0, help="Site capacity: cores.")] = None,
    memory: Annotated[int | None, typer.Option(min=0, help="Site capacity: memory GiB.")] = None,
    gpus: Annotated[int | None, typer.Option(min=0, help="Site capacity: GPUs.")] = None,
    storage: Annotated[int | None, typer.Option(min=0, help="Site capacity: storage GiB.")] = None,
    offer_ttl: Annotated[
        str | None, typer.Option(help="How long offers hold capacity, e.g. PT5M.")
    ] = None,
    default_duration: Annotated[
        str | None, typer.Option(help="Session length when none is asked, e.g. PT2H.")
    ] = None,
) -> None:
    """Run the Execution Broker of one site (IVOA ExecutionBroker API)."""
    from worksteps.broker.api.app import create_app
    from worksteps.broker.settings import BrokerSettings

    values: dict[str, Any] = read_mapping(config)
    capacity = dict(values.get("capacity") or {})
    for key, value in (("cores", cores), ("memory", memory), ("gpus", gpus), ("storage", storage)):
        if value is not None:
            capacity[key] = value
    if capacity:
        values["capacity"] = capacity
    given = {
        "site": site,
        "database_url": database_url,
        "base_url": base_url,
        "offer_ttl": _duration(offer_ttl, "--offer-ttl"),
        "default_duration": _duration(default_duration, "--default-duration"),
    }
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        settings = BrokerSettings(**values)
    except ValidationError as exc:
        raise invalid("broker settings", exc) from None
    typer.echo(f"Execution Broker for site {settings.site} on http://{host}:{port}/docs")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=GRACE,
    )


@serve.command("site")
def serve_site(
    host: Annotated[str, typer.Option(help="Interface of the broker.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port of the broker.")] = 8082,
    name: Annotated[str, typer.Option(help="Site name.")] = "site-a",
    data: Annotated[Path, typer.Option(help="Directory for the site's state.")] = Path("data"),
) -> None:
    """Run one whole site on loopback: its broker, and emulated Skaha, Rucio, PrepareData,
    Cavern and Harbor services that the broker drives through their real clients."""
    from worksteps.broker.api.app import create_app
    from worksteps.broker.settings import BrokerSettings, EngineSettings
    from worksteps.emulators.rig import start_site_rig

    root = data / name
    root.mkdir(parents=True, exist_ok=True)
    rig = start_site_rig(name, root / "services", bandwidth=20e6, storage_bandwidth=50e6)
    try:
        harbor = rig.harbor.url.removeprefix("http://")
        settings = BrokerSettings(
            site=name,
            database_url=f"sqlite:///{root / 'broker.sqlite'}",
            services=rig.services_settings,
            engine=EngineSettings(notebook_image=f"{harbor}/skaha/astroml:24.07"),
        )
        typer.echo(f"Site {name}: broker on http://{host}:{port}/docs")
        for service, emulator in rig.emulators.items():
            typer.echo(f"  {service:12} {emulator.url}")
        typer.echo(
            f"  images: {harbor}/skaha/terminal:1.1.2 (cached), "
            f"{harbor}/skaha/astroml:24.07 (upstream); Rucio scope 'demo'"
        )
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level="info",
            timeout_graceful_shutdown=GRACE,
        )
    finally:
        rig.stop()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # python -m worksteps.cli.main
    main()
