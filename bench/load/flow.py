"""Part (a): many users run the whole flow at once through the gateway's user API.

Each simulated user, all starting together: makes a workstep from the headless template
(``python-script``) whose command is changed to ``sleep 600`` (so the job stays RUNNING until
it is cancelled, as an interactive session stays AVAILABLE), asks every site for offers,
selects the best, follows the server-sent events until the session is AVAILABLE or RUNNING,
cancels it and long-polls until the execution has ended.

A headless job, not JupyterLab: a hundred JupyterLab servers on two cores would measure
JupyterLab's start-up (several seconds of CPU each), not Worksteps; the broker's preparation,
Skaha session and events are the same for both.

Nothing lost, nothing duplicated: every user's session must become ready and end, and the
Skaha emulators of all sites must have received exactly one session creation per session.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sse import EventStream

from worksteps.emulators.oidc import LocalIssuer

__all__ = ["STAGES", "UserRun", "run_flow", "skaha_creations"]

READY = ("AVAILABLE", "RUNNING")
STAGES = ("create", "execute", "select", "ready", "cancel", "ended", "total")


@dataclass
class UserRun:
    user: str
    execution: str = ""
    site: str = ""
    times: dict[str, float] = field(default_factory=dict)  # stage -> seconds it took
    ready: bool = False
    final: str = ""
    error: str = ""


def skaha_creations(described: dict[str, Any]) -> int:
    """Session creations (``POST …/session``) every site's Skaha emulator has received."""
    total = 0
    for site in described["sites"].values():
        calls = httpx.get(f"{site['skaha']}/_emulator/calls", timeout=30).json()
        total += sum(
            n
            for key, n in calls.items()
            if key.startswith("POST ") and key.rstrip("/").endswith("/session")
        )
    return total


async def _json(answer: httpx.Response, expect: int) -> Any:
    if answer.status_code != expect:
        raise RuntimeError(f"{answer.request.url.path}: HTTP {answer.status_code} {answer.text}")
    return answer.json()


async def _user(
    http: httpx.AsyncClient, gateway: str, token: str, run: UserRun, start: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    await start.wait()
    began = mark = time.monotonic()

    def lap(stage: str) -> None:
        nonlocal mark
        now = time.monotonic()
        run.times[stage] = now - mark
        mark = now

    api = f"{gateway}/api"
    made = await _json(
        await http.post(
            f"{api}/worksteps/from-template",
            json={"template": "python-script", "name": f"load {run.user}"},
            headers=headers,
        ),
        201,
    )
    executable = made["executable"] | {"command": ["sleep", "600"]}
    made = await _json(
        await http.put(
            f"{api}/worksteps/{made['uuid']}/executable",
            json={"executable": executable, "version": made["version"]},
            headers=headers,
        ),
        200,
    )
    request = await _json(
        await http.get(f"{api}/worksteps/{made['uuid']}/request", headers=headers), 200
    )
    lap("create")
    workstep = {"uuid": made["uuid"], "version": made["version"], "name": made["name"]}
    execution = await _json(
        await http.post(
            f"{api}/executions", json={"request": request, "workstep": workstep}, headers=headers
        ),
        201,
    )
    run.execution = execution["id"]
    lap("execute")
    if not execution["offers"]:
        raise RuntimeError(f"no offers: {execution['brokers']}")
    best = min(execution["offers"], key=lambda o: o["rank"])
    run.site = best["site"]
    await _json(
        await http.post(
            f"{api}/executions/{run.execution}/select",
            json={"offer": best["offer"]},
            headers=headers,
        ),
        200,
    )
    lap("select")
    async with EventStream(f"{api}/executions/{run.execution}/events", token) as stream:
        async for event in stream:
            if event.event == "phase" and any(f'"{p}"' in event.data for p in READY):
                run.ready = True
                break
            if event.event == "phase" and '"FAILED"' in event.data:
                raise RuntimeError(f"the session failed: {event.data}")
    lap("ready")
    await _json(await http.post(f"{api}/executions/{run.execution}/cancel", headers=headers), 200)
    lap("cancel")
    while True:
        found = await _json(
            await http.get(
                f"{api}/executions/{run.execution}", params={"wait": 10}, headers=headers
            ),
            200,
        )
        if found["state"] == "ended":
            run.final = str(found.get("phase") or "")
            break
    lap("ended")
    run.times["total"] = time.monotonic() - began


async def _guarded(coroutine: Any, run: UserRun, within: float) -> None:
    try:
        await asyncio.wait_for(coroutine, within)
    except Exception as exc:  # every failure is counted, not raised
        run.error = f"{type(exc).__name__}: {exc}"[:300]


async def run_flow(
    gateway: str, issuer: LocalIssuer, users: int, within: float = 300.0
) -> list[UserRun]:
    """``users`` users, all at once; each one's stages timed, or what went wrong."""
    runs = [UserRun(f"load-user-{n:03d}") for n in range(users)]
    tokens = [issuer.mint(run.user) for run in runs]
    start = asyncio.Event()
    limits = httpx.Limits(max_connections=4 * users + 10, max_keepalive_connections=2 * users)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        tasks = [
            asyncio.create_task(_guarded(_user(http, gateway, token, run, start), run, within))
            for token, run in zip(tokens, runs, strict=True)
        ]
        await asyncio.sleep(0.1)
        start.set()
        await asyncio.gather(*tasks)
    return runs
