"""How the CLI shows things: workstep summaries, the offers table, live step progress."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from worksteps.client import ClientError, WorkstepsClient

__all__ = ["Outcome", "executions", "follow", "offers", "workstep", "worksteps"]

READY = frozenset({"AVAILABLE", "RUNNING"})
ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "EXPIRED", "REJECTED"})


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _range(value: Any) -> str:
    if not isinstance(value, dict):
        return "-"
    low, high = value.get("min"), value.get("max")
    return f"{low}" if high in (None, low) else f"{low}-{high}"


def workstep(console: Console, item: dict[str, Any]) -> None:
    executable = item.get("executable") or {}
    compute = item.get("compute") or {}
    console.print(
        f"[bold]{item.get('name') or '(unnamed)'}[/bold]  {item['uuid']}  "
        f"version {item.get('version')}",
        highlight=False,
    )
    kind = str(executable.get("kind", "")).rsplit("/", 1)[-1].removesuffix(".yaml") or "-"
    image = (executable.get("image") or {}).get("locations") or [executable.get("location")]
    console.print(f"  executable  {kind} {_short(image[0] if image else '-')}", highlight=False)
    console.print(
        f"  compute     cores {_range(compute.get('cores'))}, "
        f"memory {_range(compute.get('memory'))} GiB",
        highlight=False,
    )
    for data in item.get("data") or []:
        name = (data.get("meta") or {}).get("name") or "data"
        console.print(f"  data        {name}", highlight=False)
    for store in item.get("storage") or []:
        name = (store.get("meta") or {}).get("name") or "storage"
        console.print(f"  storage     {name} {_range(store.get('size'))} GiB", highlight=False)


def worksteps(console: Console, items: list[dict[str, Any]]) -> None:
    table = Table("uuid", "name", "version", "origin", "updated", title="Your worksteps")
    for item in items:
        origin = item.get("origin") or {}
        table.add_row(
            str(item.get("uuid")),
            str(item.get("name") or ""),
            str(item.get("version")),
            str(origin.get("mode", "") if isinstance(origin, dict) else origin),
            str(item.get("updated") or item.get("modified") or ""),
        )
    console.print(table)


def _until(instant: str | None) -> str:
    if not instant:
        return "-"
    try:
        when = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    except ValueError:
        return instant
    seconds = int((when - datetime.now(UTC)).total_seconds())
    return "expired" if seconds <= 0 else f"{seconds // 60} min {seconds % 60:02d} s"


def offers(console: Console, execution: dict[str, Any]) -> None:
    """The ranked offers, then each site's answer."""
    table = Table(
        "rank",
        "site",
        "start",
        "ready",
        "data",
        "image",
        "cores",
        "GiB",
        "expires in",
        "why",
        title=f"Offers for execution {execution['id']}",
    )
    for offer in sorted(execution.get("offers") or [], key=lambda o: o.get("rank") or 99):
        locality = offer.get("locality") or {}
        resources = offer.get("resources") or {}
        table.add_row(
            str(offer.get("rank")),
            str(offer.get("site")),
            str(offer.get("start") or "-"),
            str(offer.get("ready") or "-"),
            str(locality.get("data") or "-"),
            str(locality.get("image") or "-"),
            str(resources.get("cores") or "-"),
            str(resources.get("memory") or "-"),
            _until(offer.get("expires")),
            "; ".join(offer.get("reasons") or [])[:120],
        )
    console.print(table)
    for broker in execution.get("brokers") or []:
        status = broker.get("status")
        detail = broker.get("error") or "; ".join(
            str(m.get("message")) for m in broker.get("messages") or [] if isinstance(m, dict)
        )
        console.print(f"  {broker.get('site')}: {status} {_short(detail, 100)}", highlight=False)
    console.print(f"Select one: worksteps select {execution['id']} [--rank N]", highlight=False)


def executions(console: Console, items: list[dict[str, Any]]) -> None:
    table = Table("execution", "workstep", "site", "state", "phase", "created", title="Sessions")
    for item in items:
        ref = item.get("workstep") or {}
        table.add_row(
            str(item.get("id")),
            str(ref.get("name") or ref.get("uuid") or "") if isinstance(ref, dict) else "",
            str(item.get("site") or "-"),
            str(item.get("state")),
            str(item.get("phase") or "-"),
            str(item.get("created")),
        )
    console.print(table)


@dataclass
class Outcome:
    ok: bool
    phase: str
    reason: str = ""
    link: str | None = None


def _reason(execution: dict[str, Any]) -> str:
    session = execution.get("session") or {}
    messages = [
        str(m.get("message"))
        for m in (session.get("messages") or [])
        if isinstance(m, dict) and m.get("level") == "ERROR"
    ]
    return "; ".join(messages) or str((execution.get("relay") or {}).get("error") or "")


def follow(console: Console, client: WorkstepsClient, execution: str) -> Outcome:
    """One progress bar per preparation step, fed by the execution's event stream."""
    bars: dict[str, TaskID] = {}
    phase = "?"
    columns = (
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    failure = ""
    with Progress(*columns, console=console, transient=False) as progress:
        try:
            for event in client.events(execution):
                if "status" in event and "type" not in event:  # the relay's own notes
                    if event["status"] in ("failed", "gave-up"):
                        failure = str(event.get("error") or event["status"])
                        break
                    continue
                if event.get("type") == "phase":
                    phase = str(event.get("phase"))
                    progress.console.print(f"phase {phase}", highlight=False)
                    if phase in READY or phase in ENDED:
                        break
                    continue
                step = str(event.get("step") or event.get("kind") or "step")
                if step not in bars:
                    bars[step] = progress.add_task(step, total=100.0, note="")
                done = event.get("state") == "DONE"
                percent = 100.0 if done else float(event.get("percent") or 0.0)
                note = str(event.get("message") or event.get("state") or "")[:40]
                progress.update(bars[step], completed=percent, note=note)
        except ClientError as exc:
            failure = str(exc)
    final = client.execution(execution)
    phase = str(final.get("phase") or phase)
    if phase in READY:
        return Outcome(True, phase, link=(final.get("session") or {}).get("access"))
    return Outcome(False, phase, failure or _reason(final) or f"phase {phase}")
