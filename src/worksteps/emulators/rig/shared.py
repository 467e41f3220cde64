"""What several emulated sites share: one Rucio, the door of its storage elements, and the
upstream (central) Harbor that site registries replicate from.

SRCNet has one Rucio data lake whose storage elements (RSEs) sit at the sites, and a central
image registry; each site has its own Skaha, Cavern, PrepareData and Harbor. Layout under
``root``::

    rucio/<RSE>/     replica files of each storage element (served by the door)
    catalogue/       the demo files' bytes (Rucio serves every replica with exactly these)

One service account (``user``, one bearer token, one password) is known everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from starlette.types import ASGIApp

from worksteps.core.serving import ServedApp, start_in_thread
from worksteps.emulators import harbor, rucio
from worksteps.emulators.faults import FaultInjector
from worksteps.emulators.rig.catalogue import (
    DemoDataset,
    PlacedFile,
    RigImage,
    harbor_images,
    placed_catalogue,
)
from worksteps.emulators.rig.door import door_app, rse_prefix

__all__ = ["PlacedFile", "RunningEmulator", "SharedServices", "start_shared_services"]


@dataclass(frozen=True)
class RunningEmulator:
    """One emulator being served: its fault injector (faults, call counts) and its server."""

    name: str
    app: FaultInjector
    served: ServedApp

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (service paths go below it)."""
        return self.served.url

    def stop(self) -> None:
        self.served.stop()


@dataclass
class SharedServices:
    """The running shared emulators; a context manager that stops them on exit."""

    root: Path
    user: str
    token: str
    password: str
    rses: dict[str, str]  # RSE -> site name
    catalogue: rucio.RucioCatalogue
    emulators: dict[str, RunningEmulator] = field(default_factory=dict)

    @property
    def rucio(self) -> RunningEmulator:
        return self.emulators["rucio"]

    @property
    def door(self) -> RunningEmulator:
        return self.emulators["door"]

    @property
    def upstream(self) -> RunningEmulator:
        return self.emulators["upstream"]

    @property
    def registry_host(self) -> str:
        """The upstream registry's host: image references that every site can resolve."""
        return self.upstream.url.removeprefix("http://")

    def stop(self) -> None:
        for emulator in reversed(list(self.emulators.values())):
            with contextlib.suppress(Exception):
                emulator.stop()
        self.emulators.clear()

    def __enter__(self) -> SharedServices:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_emulator(role: str, app: ASGIApp, into: dict[str, RunningEmulator]) -> RunningEmulator:
    """Serve ``app`` (a :class:`FaultInjector`) on loopback and record it under ``role``."""
    if not isinstance(app, FaultInjector):
        raise TypeError(f"the {role} emulator is not wrapped in a FaultInjector")
    into[role] = RunningEmulator(role, app, start_in_thread(app))
    return into[role]


def start_shared_services(
    root: Path,
    *,
    rses: Mapping[str, str],
    files: Sequence[PlacedFile],
    datasets: Sequence[DemoDataset],
    images: Sequence[RigImage],
    user: str,
    token: str,
    password: str,
    bandwidth: float = 100e6,
    links: Mapping[tuple[str, str], float] | None = None,
    transfer_latency: float = 0.0,
) -> SharedServices:
    """Start Rucio (with the storage elements ``rses``: RSE -> site), the door and the upstream
    Harbor holding every image of ``images``. ``bandwidth`` is the bytes/s of a transfer
    between two RSEs unless ``links`` names that pair. Everything started is stopped again
    if one part fails."""
    root = root.resolve()
    rse_roots = {rse: root / "rucio" / rse for rse in rses}
    emulators: dict[str, RunningEmulator] = {}
    try:
        door = serve_emulator("door", door_app(rse_roots), emulators)
        did_files, did_sets = placed_catalogue(root / "catalogue", files, datasets, set(rses))
        pairs = [(a, b) for a in rses for b in rses if a != b]
        config = rucio.RucioConfig(
            rses=[
                rucio.RSEConfig(
                    name=rse, site=site, root=rse_roots[rse], prefix=rse_prefix(door.url, rse)
                )
                for rse, site in rses.items()
            ],
            files=did_files,
            datasets=did_sets,
            links=[
                rucio.LinkConfig(
                    source=a, destination=b, bytes_per_second=(links or {}).get((a, b), bandwidth)
                )
                for a, b in pairs
            ],
            default_bandwidth=bandwidth,
            transfer_latency=transfer_latency,
            identities=[rucio.Identity(account=user, username=user, password=password)],
            bearer_tokens={token: user},
        )
        catalogue = rucio.RucioCatalogue(config)
        serve_emulator("rucio", rucio.create_app(config, catalogue), emulators)
        projects, specs = harbor_images(images)
        upstream = harbor.HarborConfig(
            projects=projects,
            images=specs,
            users=[harbor.UserSpec(name=user, password=password, admin=True)],
            bearer_tokens={token: user},
        ).as_upstream()
        serve_emulator("upstream", harbor.create_app(upstream), emulators)
    except BaseException:
        for emulator in reversed(list(emulators.values())):
            emulator.stop()
        raise
    return SharedServices(
        root=root,
        user=user,
        token=token,
        password=password,
        rses=dict(rses),
        catalogue=catalogue,
        emulators=emulators,
    )
