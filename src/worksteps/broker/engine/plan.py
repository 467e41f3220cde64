"""The steps that prepare, run and release one accepted session, derived from its document.

area ─┬─ place:<data> (from a URL) ────────────────┐
      └─ stage:<data> (Rucio rule) ─ place:<data> ─┤
image ─────────────────────────────────────────────┼─ launch ─ monitor
                                                   │
release: due when the booking ends (or at once on cancel, failure or a finished job)
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from worksteps.broker.settings import EngineSettings
from worksteps.schema import kinds

__all__ = ["PlannedStep", "plan_steps", "session_kind"]


@dataclass(frozen=True)
class PlannedStep:
    key: str
    kind: str
    params: dict[str, Any]
    after: list[str] = field(default_factory=list)


def _file_name(url: str, fallback: str) -> str:
    name = posixpath.basename(urlsplit(url).path) or fallback
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:120] or fallback


def session_kind(executable: dict[str, Any]) -> str:
    """The Skaha session type that runs ``executable``."""
    if executable.get("kind") == kinds.EXEC_JUPYTER:
        return "notebook"
    image = " ".join((executable.get("image") or {}).get("locations") or []).lower()
    for kind in ("carta", "desktop", "firefly"):
        if kind in image:
            return kind
    ports = ((executable.get("network") or {}).get("ports")) or []
    if any(
        p.get("access") and str(p.get("protocol", "")).upper().startswith("HTTP") for p in ports
    ):
        return "contributed"
    return "headless"


def _data_steps(data: dict[str, Any], destination: str) -> list[PlannedStep]:
    uuid = str(data["meta"]["uuid"])
    name = str(data["meta"].get("name") or uuid)
    kind = data.get("kind")
    did: tuple[str, str] | None = None
    url: str | None = None
    if kind == kinds.DATA_RUCIO:
        did = (data["rucio"]["scope"], data["rucio"]["object"])
    elif kind == kinds.DATA_SKAO:
        did = (data["skao"]["namespace"], data["skao"]["objectname"])
    elif kind == kinds.DATA_SIMPLE:
        url = data.get("location")
    elif kind == kinds.DATA_IVOA:
        url = ((data.get("ivoa") or {}).get("datalink") or {}).get("access_url")
    elif kind == kinds.DATA_S3:
        url = "/".join(
            str(p).strip("/")
            for p in (data.get("endpoint"), data.get("bucket"), data.get("object"))
            if p
        )
    place = f"place:{uuid}"
    if did is not None:
        stage = f"stage:{uuid}"
        return [
            PlannedStep(
                stage, "stage", {"scope": did[0], "name": did[1], "destination": destination}
            ),
            PlannedStep(
                place,
                "place",
                {"source_step": stage, "file": _file_name(did[1], name)},
                ["area", stage],
            ),
        ]
    params: dict[str, Any] = {"source": url or "", "file": _file_name(url or "", name)}
    return [PlannedStep(place, "place", params, ["area"])]


def plan_steps(
    session: str, doc: dict[str, Any], user: str, engine: EngineSettings
) -> list[PlannedStep]:
    """Every step of ``session`` (release excluded: the worker schedules it)."""
    destination = f"worksteps/{session}"
    steps = [PlannedStep("area", "area", {"user": user, "path": destination})]
    for data in doc.get("data") or []:
        steps.extend(_data_steps(data, destination))
    executable = doc.get("executable") or {}
    if executable.get("kind") == kinds.EXEC_JUPYTER and executable.get("location"):
        location = str(executable["location"])
        steps.append(
            PlannedStep(
                "place:notebook",
                "place",
                {"source": location, "file": _file_name(location, "notebook.ipynb")},
                ["area"],
            )
        )
    image = engine.notebook_image
    if executable.get("kind") in (kinds.EXEC_DOCKER, kinds.EXEC_SINGULARITY):
        locations = (executable.get("image") or {}).get("locations") or [executable.get("location")]
        image = str(locations[0])
    steps.append(PlannedStep("image", "image", {"image": image}))
    compute = doc.get("compute") or {}
    command = [str(c) for c in executable.get("command") or []]
    entry = executable.get("entrypoint")
    launch: dict[str, Any] = {
        "name": f"ws-{session[:8]}",
        "kind": session_kind(executable),
        "image": image,
        "cores": (compute.get("cores") or {}).get("min"),
        "ram": (compute.get("memory") or {}).get("min"),
        "env": dict(executable.get("environment") or {}),
    }
    if entry or command:
        launch["cmd"] = entry or command[0]
        launch["args"] = command if entry else command[1:]
    steps.append(PlannedStep("launch", "launch", launch, [s.key for s in steps]))
    steps.append(PlannedStep("monitor", "monitor", {}, ["launch"]))
    return steps
