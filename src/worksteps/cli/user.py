"""The user's commands: sign in, make and edit worksteps, execute, select, watch, cancel.

They talk to a Science Gateway (``--gateway``, or ``WORKSTEPS_GATEWAY``) through
:class:`worksteps.client.WorkstepsClient` with the token ``worksteps login`` stored. Errors
are one readable message on stderr (with the fields at fault) and a non-zero exit code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.console import Console

from worksteps.cli import render
from worksteps.client import ClientError, Credentials, CredentialStore, WorkstepsClient
from worksteps.client.login import LoginError, login

__all__ = ["register"]

T = TypeVar("T")
out = Console()
err = Console(stderr=True)

Gateway = Annotated[
    str,
    typer.Option(envvar="WORKSTEPS_GATEWAY", help="The Science Gateway's address."),
]
DEFAULT_GATEWAY = "http://127.0.0.1:8080"
AsJson = Annotated[bool, typer.Option("--json", help="Print the JSON answer instead.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def _client(gateway: str) -> Iterator[WorkstepsClient]:
    try:
        stored = CredentialStore().get(gateway)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if stored is None:
        raise _fail(f"not signed in to {gateway}: run `worksteps login`")
    if stored.expired:
        raise _fail(f"the sign-in to {gateway} has expired: run `worksteps login`")
    with WorkstepsClient(gateway, stored.access_token) as client:
        try:
            yield client
        except ClientError as exc:
            raise _fail(str(exc), 2 if exc.status in (400, 404, 409, 422) else 1) from None


def _call(gateway: str, action: Callable[[WorkstepsClient], T]) -> T:
    with _client(gateway) as client:
        return action(client)


def _value(text: str, option: str) -> Any:
    """A JSON or YAML value, inline or ``@file``."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {text[1:]}: {exc}", param_hint=option) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"not JSON or YAML: {exc}", param_hint=option) from None


def _range(text: str, option: str) -> dict[str, int]:
    low, _, high = text.partition(":")
    try:
        values = {"min": int(low), "max": int(high or low)}
    except ValueError:
        raise typer.BadParameter("give N or MIN:MAX, whole numbers", param_hint=option) from None
    if values["min"] < 0 or values["max"] < values["min"]:
        raise typer.BadParameter("need 0 <= MIN <= MAX", param_hint=option)
    return values


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value))


# -- sign-in ---------------------------------------------------------------------------------
def login_command(
    gateway: Gateway = DEFAULT_GATEWAY,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the sign-in address instead.")
    ] = False,
    token: Annotated[
        str | None, typer.Option(help="Store this access token (from your OIDC provider).")
    ] = None,
) -> None:
    """Sign in to a gateway (in a browser) and keep the token for the other commands."""
    if token is not None:
        credentials = Credentials(gateway=gateway.rstrip("/"), access_token=token)
    else:

        def show(url: str) -> None:
            out.print(f"Sign in at:\n  {url}", soft_wrap=True, highlight=False)

        opener = show if no_browser else None
        try:
            credentials = login(gateway, open_browser=opener) if opener else login(gateway)
        except LoginError as exc:
            raise _fail(str(exc)) from None
    with WorkstepsClient(gateway, credentials.access_token) as client:
        try:
            client.worksteps()
        except ClientError as exc:
            raise _fail(f"the gateway refused the token: {exc}") from None
    CredentialStore().put(credentials)
    out.print(f"Signed in to {credentials.gateway}.")


def logout_command(gateway: Gateway = DEFAULT_GATEWAY) -> None:
    """Forget the token of a gateway."""
    forgotten = CredentialStore().forget(gateway)
    out.print("Signed out." if forgotten else "You were not signed in.")


# -- worksteps -------------------------------------------------------------------------------
workstep = typer.Typer(help="Create, show, list, edit and delete worksteps.", no_args_is_help=True)


@workstep.command("create")
def create(
    gateway: Gateway = DEFAULT_GATEWAY,
    name: Annotated[str | None, typer.Option(help="A name for it.")] = None,
    template: Annotated[str | None, typer.Option(help="From a template (see templates).")] = None,
    data: Annotated[
        list[str] | None, typer.Option(help="From data: a Rucio DID scope:name, ivoid or URL.")
    ] = None,
    discovery: Annotated[
        str | None, typer.Option(help="From a Software Discovery URL / image / notebook URL.")
    ] = None,
    history: Annotated[
        str | None, typer.Option(help="From an earlier workstep's or session's URL.")
    ] = None,
    provenance: Annotated[str | None, typer.Option(help="From a PROV-JSON record's URL.")] = None,
    as_json: AsJson = False,
) -> None:
    """Create a workstep: empty, or from a template, data, software, history or provenance."""
    chosen = [
        (mode, value)
        for mode, value in (
            ("template", template),
            ("data", data),
            ("discovery", discovery),
            ("history", history),
            ("provenance", provenance),
        )
        if value
    ]
    if len(chosen) > 1:
        raise _fail("choose one of --template, --data, --discovery, --history, --provenance", 2)
    mode, value = chosen[0] if chosen else ("empty", None)
    fields: dict[str, Any] = {"name": name}
    if mode == "template":
        fields["template"] = value
    elif mode == "data":
        fields["references"] = value
    elif mode != "empty":
        fields["url"] = value
    made = _call(gateway, lambda c: c.create(mode, **fields))
    _print_json(made) if as_json else render.workstep(out, made)


@workstep.command("list")
def list_worksteps(gateway: Gateway = DEFAULT_GATEWAY, as_json: AsJson = False) -> None:
    """Your worksteps."""
    items = _call(gateway, lambda c: c.worksteps())
    _print_json(items) if as_json else render.worksteps(out, items)


@workstep.command("show")
def show(
    uuid: str,
    gateway: Gateway = DEFAULT_GATEWAY,
    request: Annotated[bool, typer.Option(help="Show the IVOA ExecutionRequest.")] = False,
    versions: Annotated[bool, typer.Option(help="Show its versions.")] = False,
    as_json: AsJson = False,
) -> None:
    """One workstep (its current version)."""
    with _client(gateway) as client:
        if request:
            _print_json(client.request_of(uuid))
        elif versions:
            _print_json(client.versions(uuid))
        else:
            found = client.workstep(uuid)
            _print_json(found) if as_json else render.workstep(out, found)


@workstep.command("edit")
def edit(
    uuid: str,
    gateway: Gateway = DEFAULT_GATEWAY,
    executable: Annotated[str | None, typer.Option(help="JSON/YAML, or @file.")] = None,
    compute: Annotated[str | None, typer.Option(help="JSON/YAML, or @file.")] = None,
    cores: Annotated[str | None, typer.Option(help="Cores: N or MIN:MAX.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory GiB: N or MIN:MAX.")] = None,
    data: Annotated[str | None, typer.Option(help="The data list: JSON/YAML, or @file.")] = None,
    add_data: Annotated[
        list[str] | None, typer.Option(help="Add data: a Rucio DID, ivoid or URL.")
    ] = None,
    storage: Annotated[str | None, typer.Option(help="The storage list: JSON/YAML/@file.")] = None,
    as_json: AsJson = False,
) -> None:
    """Change a workstep; each change makes a new version (the current one is the base)."""
    if compute is not None and (cores or memory):
        raise _fail("give --compute, or --cores/--memory, not both", 2)
    if not any((executable, compute, cores, memory, data, add_data, storage)):
        raise _fail("nothing to change: give --executable, --compute, --data, --storage …", 2)
    with _client(gateway) as client:
        current = client.workstep(uuid)
        version = int(current["version"])
        if executable is not None:
            current = client.edit(uuid, "executable", _value(executable, "--executable"), version)
        if cores or memory:
            base = dict(current.get("compute") or {})
            if cores:
                base["cores"] = _range(cores, "--cores")
            if memory:
                base["memory"] = _range(memory, "--memory")
            compute_value: Any = base
        else:
            compute_value = _value(compute, "--compute") if compute is not None else None
        if compute_value is not None:
            current = client.edit(uuid, "compute", compute_value, int(current["version"]))
        if data is not None:
            current = client.edit(uuid, "data", _value(data, "--data"), int(current["version"]))
        if add_data:
            current = client.add_data(uuid, list(add_data), int(current["version"]))
        if storage is not None:
            value = _value(storage, "--storage")
            current = client.edit(uuid, "storage", value, int(current["version"]))
    _print_json(current) if as_json else render.workstep(out, current)


@workstep.command("delete")
def delete(uuid: str, gateway: Gateway = DEFAULT_GATEWAY) -> None:
    """Delete a workstep and its history."""
    _call(gateway, lambda c: c.delete(uuid))
    out.print(f"Deleted {uuid}.")


@workstep.command("templates")
def templates(gateway: Gateway = DEFAULT_GATEWAY) -> None:
    """The templates a workstep can start from."""
    _print_json(_call(gateway, lambda c: c.templates()))


# -- executions ------------------------------------------------------------------------------
def execute(
    uuid: str,
    gateway: Gateway = DEFAULT_GATEWAY,
    deadline: Annotated[
        float | None, typer.Option(min=0.1, max=300, help="Seconds to wait for the sites.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Ask every site for offers for a workstep; prints them ranked."""
    execution = _call(gateway, lambda c: c.execute(uuid, deadline))
    _print_json(execution) if as_json else render.offers(out, execution)


def select(
    execution: str,
    offer: Annotated[str | None, typer.Argument(help="The offer's uuid (default: rank 1).")] = None,
    rank: Annotated[int | None, typer.Option(min=1, help="Take the offer of this rank.")] = None,
    gateway: Gateway = DEFAULT_GATEWAY,
) -> None:
    """Take one offer of an execution (every other offer is rejected at once)."""
    with _client(gateway) as client:
        if offer is None:
            offers = client.execution(execution)["offers"]
            wanted = rank or 1
            matching = [o for o in offers if o.get("rank") == wanted]
            if not matching:
                raise _fail(f"there is no offer of rank {wanted}", 2)
            offer = str(matching[0]["offer"])
        chosen = client.select(execution, offer)
    selected = chosen.get("selected") or {}
    out.print(f"Selected the offer of {selected.get('site', '?')}; `worksteps watch {execution}`.")


def watch(execution: str, gateway: Gateway = DEFAULT_GATEWAY) -> None:
    """Follow the preparation step by step; ends when the session is ready (prints its link)
    or failed (non-zero exit with the reason)."""
    with _client(gateway) as client:
        outcome = render.follow(out, client, execution)
    if outcome.ok:
        out.print(f"[green]Ready:[/green] {outcome.link or '(no link)'}", highlight=False)
        return
    if outcome.phase == "?":
        raise _fail(f"cannot follow {execution}: {outcome.reason}", 3)
    raise _fail(f"the session is {outcome.phase}: {outcome.reason}", 3)


def cancel(execution: str, gateway: Gateway = DEFAULT_GATEWAY) -> None:
    """Withdraw an execution's offers, or cancel its session."""
    done = _call(gateway, lambda c: c.cancel(execution))
    out.print(f"Cancelled; the execution is {done.get('state')}.")


def sessions(gateway: Gateway = DEFAULT_GATEWAY, as_json: AsJson = False) -> None:
    """Your executions and their sessions, newest first."""
    items = _call(gateway, lambda c: c.executions())
    _print_json(items) if as_json else render.executions(out, items)


def register(app: typer.Typer) -> None:
    """Add the user's commands to the ``worksteps`` app."""
    app.command("login")(login_command)
    app.command("logout")(logout_command)
    app.add_typer(workstep, name="workstep")
    for command in (execute, select, watch, cancel, sessions):
        app.command()(command)
