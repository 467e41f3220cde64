"""The HTTP door of the rig's storage elements: replica files served read-only over HTTP.

A real RSE is reached through a storage protocol (WebDAV/HTTPS on SRCNet); Rucio's replica
URLs (PFNs) name that door. The Rucio emulator keeps replicas as files under each RSE's
root and writes a PFN as ``<prefix>/<deterministic path>``, so the rig gives each RSE the
prefix ``<door>/rse/<RSE>`` and serves ``<root of RSE>`` there. Cavern's pull-from-URL
transfer can then fetch a staged replica exactly as it would from a real storage element.

Only GET and HEAD are served, nothing outside an RSE's root (Starlette's static files refuse
paths that escape it), and the app is wrapped in a :class:`FaultInjector` like every emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from worksteps.emulators.faults import FaultInjector

__all__ = ["door_app", "rse_prefix"]


def rse_prefix(door_url: str, rse: str) -> str:
    """The PFN prefix of ``rse`` behind the door at ``door_url``."""
    return f"{door_url.rstrip('/')}/rse/{rse}"


def door_app(roots: Mapping[str, Path]) -> FaultInjector:
    """Serve each RSE's root directory (created if missing) under ``/rse/<RSE>/``."""
    mounts = []
    for rse, root in sorted(roots.items()):
        root.mkdir(parents=True, exist_ok=True)
        mounts.append(Mount(f"/rse/{rse}", app=StaticFiles(directory=root), name=rse))
    return FaultInjector(Starlette(routes=mounts))
