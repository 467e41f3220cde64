"""One emulated site: its Skaha, Rucio, PrepareData, Cavern and Harbor, configured to agree.

Layout under ``root`` (the invariants that make the real adapters work end to end)::

    storage/            Cavern's node tree
      home/<user>/      the service account's home: Cavern's /home/<user>
    skaha/              Skaha's data root
      home -> ../storage/home   so a session's arc/home/<user> IS Cavern's /home/<user>
      sessions/<id>/    working directories (arc/home/<user> inside each, a symlink)
      logs/<id>.log
    rucio/<RSE>/        replica files of each storage element
    catalogue/          the demo files' bytes (Rucio serves replicas with exactly these)

- Staged data reaches a session this way: a Rucio rule makes the replica appear under
  ``rucio/<site RSE>/``; its PFN is an HTTP URL of the rig's storage door (:mod:`.door`);
  Cavern's pullToVoSpace fetches that URL into ``/home/<user>/...``; a session sees the file
  at ``arc/home/<user>/...`` relative to its working directory.
- PrepareData shares Rucio's catalogue (one site, one Rucio) and copies into the same homes.
- Harbor's images exist in an upstream Harbor (``config.as_upstream()``); the site's Harbor
  holds the ``cached`` ones and replicates the others from the endpoint named ``upstream``.
  Skaha trusts exactly the site Harbor's host and lists every image it knows.
- Several sites can share one Rucio, its door and the upstream Harbor
  (:func:`start_site` with a :class:`~worksteps.emulators.rig.shared.SharedServices`), as
  SRCNet's sites share one data lake and one central registry; :func:`start_site_rig` starts
  a site with shared services of its own (its RSE and one remote RSE).
- One service account everywhere: the user name ``user`` with one bearer token (Skaha,
  Cavern, PrepareData, Harbor's REST API) and one password (Rucio userpass as account
  ``user``, Harbor basic auth as an administrator, who may replicate).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from worksteps.emulators import cavern, harbor, preparedata, skaha
from worksteps.emulators.rig.catalogue import (
    DEFAULT_DATASETS,
    DEFAULT_FILES,
    DEFAULT_IMAGES,
    DemoDataset,
    DemoFile,
    PlacedFile,
    RigImage,
    harbor_images,
    skaha_images,
)
from worksteps.emulators.rig.layout import check_rse, check_user, prepare_layout, slug
from worksteps.emulators.rig.shared import (
    RunningEmulator,
    SharedServices,
    serve_emulator,
    start_shared_services,
)
from worksteps.site.services import (
    CavernSettings,
    HarborSettings,
    PrepareDataSettings,
    RucioSettings,
    SiteServicesSettings,
    SkahaSettings,
)

__all__ = ["RunningEmulator", "SiteRig", "start_site", "start_site_rig"]

_rig_numbers = itertools.count(1)
UPSTREAM = "upstream"
_SITE_ROLES = ("preparedata", "cavern", "harbor", "skaha")


class SiteRig:
    """The running emulators of one site and the settings that reach them.

    Made by :func:`start_site` or :func:`start_site_rig`; a context manager that stops the
    site's own emulators on exit (and the shared ones when it owns them).

    ``emulators`` maps ``skaha``, ``rucio``, ``preparedata``, ``cavern``, ``harbor``,
    ``upstream`` (the registry images are copied from) and ``door`` (HTTP access to the
    replica files of every RSE) to their :class:`RunningEmulator`.
    """

    def __init__(
        self,
        *,
        name: str,
        root: Path,
        user: str,
        site_rse: str,
        remote_rse: str,
        emulators: dict[str, RunningEmulator],
        services_settings: SiteServicesSettings,
        shared: SharedServices,
        owns_shared: bool,
    ) -> None:
        self.name = name
        self.root = root
        self.user = user
        self.site_rse = site_rse
        self.remote_rse = remote_rse
        self.services_settings = services_settings
        self.shared = shared
        self._own = emulators
        self._owns_shared = owns_shared
        self.emulators = {**shared.emulators, **emulators}
        self._stopped = False

    @property
    def own_emulators(self) -> dict[str, RunningEmulator]:
        """The emulators of this site alone (not the shared Rucio, door and upstream)."""
        return dict(self._own)

    @property
    def skaha(self) -> RunningEmulator:
        return self.emulators["skaha"]

    @property
    def rucio(self) -> RunningEmulator:
        return self.emulators["rucio"]

    @property
    def preparedata(self) -> RunningEmulator:
        return self.emulators["preparedata"]

    @property
    def cavern(self) -> RunningEmulator:
        return self.emulators["cavern"]

    @property
    def harbor(self) -> RunningEmulator:
        return self.emulators["harbor"]

    @property
    def upstream(self) -> RunningEmulator:
        return self.emulators["upstream"]

    @property
    def door(self) -> RunningEmulator:
        return self.emulators["door"]

    @property
    def home(self) -> Path:
        """The service account's home on disk (Cavern's /home/<user>, a session's arc/home)."""
        return self.root / "storage" / "home" / self.user

    def stop(self) -> None:
        """Stop the site's emulators, Skaha first, and kill any session process that outlived
        it; then the shared services if this site started them."""
        if self._stopped:
            return
        self._stopped = True
        order = ["skaha", *(n for n in reversed(self._own) if n != "skaha")]
        for name in order:
            if name in self._own:
                _stop(self._own[name])
        if self._owns_shared:
            self.shared.stop()

    def __enter__(self) -> SiteRig:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _session_processes(emulator: RunningEmulator) -> list[subprocess.Popen[bytes]]:
    supervisor = getattr(getattr(emulator.app.app, "state", None), "supervisor", None)
    if supervisor is None:
        return []
    records = list(supervisor.sessions.values())  # one C-level copy: safe across threads
    return [r.process for r in records if r.process is not None]


def _stop(emulator: RunningEmulator) -> None:
    """Stop the server; its lifespan stops Skaha's sessions, and anything left is killed."""
    processes = _session_processes(emulator)
    emulator.served.stop()
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


def start_site_rig(
    name: str,
    root: Path,
    *,
    files: Sequence[DemoFile] = DEFAULT_FILES,
    datasets: Sequence[DemoDataset] | None = None,
    images: Sequence[RigImage] = DEFAULT_IMAGES,
    user: str = "worksteps",
    site_rse: str | None = None,
    remote_rse: str = "REMOTE-T0",
    bandwidth: float = 100e6,
    transfer_latency: float = 0.0,
    storage_bandwidth: float | None = None,
    image_pull_rate: float = 100e6,
    replication_startup: float = 0.0,
    start_latency: float = 1.0,
    terminating_seconds: float = 0.5,
    token: str | None = None,
    password: str | None = None,
) -> SiteRig:
    """Start the emulators of site ``name`` on loopback, with their state under ``root``.

    ``files``/``datasets``: the demo catalogue (scope ``demo``); ``datasets`` defaults to
    the default datasets with the default files, else to none. ``images``: what Harbor and
    Skaha know. ``site_rse`` defaults to the site name in upper case; ``remote_rse`` is the
    other site holding replicas. ``bandwidth``: bytes/s of Rucio transfers between the two
    RSEs; ``transfer_latency``: seconds before a rule's first transfer. ``storage_bandwidth``:
    bytes/s of Cavern copies (None: unthrottled). ``image_pull_rate``/``replication_startup``:
    Harbor replication speed and delay. ``start_latency``: seconds a Skaha session stays
    Pending. ``token``/``password`` of the service account ``user``: random when None.
    Everything is stopped again if one emulator fails to start.
    """
    check_user(user)
    site_rse = site_rse or slug(name).upper()
    for rse in (site_rse, remote_rse):
        check_rse(rse)
    if site_rse == remote_rse:
        raise ValueError("the site's RSE and the remote RSE must differ")
    if datasets is None:
        datasets = DEFAULT_DATASETS if files is DEFAULT_FILES else ()
    placed = [
        PlacedFile(
            f.name,
            f.size,
            tuple(r for r, held in ((site_rse, f.at_site), (remote_rse, f.remote)) if held),
        )
        for f in files
    ]
    shared = start_shared_services(
        root,
        rses={site_rse: name, remote_rse: remote_rse.lower()},
        files=placed,
        datasets=datasets,
        images=images,
        user=user,
        token=token or secrets.token_urlsafe(24),
        password=password or secrets.token_urlsafe(16),
        bandwidth=bandwidth,
        transfer_latency=transfer_latency,
    )
    try:
        return start_site(
            name,
            root,
            shared,
            site_rse=site_rse,
            remote_rse=remote_rse,
            images=images,
            storage_bandwidth=storage_bandwidth,
            image_pull_rate=image_pull_rate,
            replication_startup=replication_startup,
            start_latency=start_latency,
            terminating_seconds=terminating_seconds,
            owns_shared=True,
        )
    except BaseException:
        shared.stop()
        raise


def start_site(
    name: str,
    root: Path,
    shared: SharedServices,
    *,
    site_rse: str,
    images: Sequence[RigImage],
    remote_rse: str = "",
    storage_bandwidth: float | None = None,
    image_pull_rate: float = 100e6,
    replication_startup: float = 0.0,
    start_latency: float = 1.0,
    terminating_seconds: float = 0.5,
    owns_shared: bool = False,
) -> SiteRig:
    """Start one site's PrepareData, Cavern, Harbor and Skaha under ``root``, reaching the
    ``shared`` Rucio (its storage element ``site_rse``) and upstream registry. ``images``: the
    images of the federation with the ``cached`` flag of this site's Harbor."""
    if site_rse not in shared.rses:
        raise ValueError(f"{site_rse} is not a storage element of the shared Rucio")
    user, token, password = shared.user, shared.token, shared.password
    root = root.resolve()
    prepare_layout(root, user)
    home_root = root / "storage" / "home"
    emulators: dict[str, RunningEmulator] = {}
    try:
        prepare_config = preparedata.PrepareDataConfig(
            rse=site_rse, home_root=home_root, home_prefix="/home", tokens={token: user}
        )
        prepare = serve_emulator(
            "preparedata", preparedata.create_app(prepare_config, shared.catalogue), emulators
        )
        resource_id = f"ivo://rig{next(_rig_numbers)}.{slug(name)}.test/cavern"
        cavern_config = cavern.CavernConfig(
            root=root / "storage",
            resource_id=resource_id,
            tokens={token: user},
            bandwidth=storage_bandwidth,
        )
        cavern_served = serve_emulator("cavern", cavern.create_app(cavern_config), emulators)
        projects, image_specs = harbor_images(images)
        site_harbor = harbor.HarborConfig(
            projects=projects,
            images=image_specs,
            users=[harbor.UserSpec(name=user, password=password, admin=True)],
            bearer_tokens={token: user},
            pull_rate=image_pull_rate,
            replication_startup=replication_startup,
            upstream=harbor.UpstreamSpec(name=UPSTREAM, url=shared.upstream.url),
        )
        harbor_served = serve_emulator("harbor", harbor.create_app(site_harbor), emulators)
        registry_host = harbor_served.url.removeprefix("http://")
        skaha_config = skaha.SkahaConfig(
            data_root=root / "skaha",
            registry_hosts=[registry_host],
            images=skaha_images(images, registry_host),
            start_latency=start_latency,
            terminating_seconds=terminating_seconds,
            tokens={token: user},
            unknown_tokens="reject",
        )
        skaha_served = serve_emulator("skaha", skaha.create_app(skaha_config), emulators)
    except BaseException:
        for emulator in reversed(list(emulators.values())):
            _stop(emulator)
        raise

    settings = SiteServicesSettings(
        site=name,
        user=user,
        skaha=SkahaSettings(
            url=f"{skaha_served.url}/skaha/v1",
            token=token,
            home_mount=f"{skaha_config.top_level_directory}/home",
        ),
        rucio=RucioSettings(
            host=shared.rucio.url, account=user, username=user, password=password, rse=site_rse
        ),
        cavern=CavernSettings(
            resource_id=resource_id,
            capabilities_url=f"{cavern_served.url}{cavern_config.path_prefix}/capabilities",
            token=token,
        ),
        harbor=HarborSettings(
            url=harbor_served.url,
            username=user,
            password=password,
            upstream=UPSTREAM,
            upstream_username=user,
            upstream_password=password,
        ),
        preparedata=PrepareDataSettings(url=prepare.url, token=token),
    )
    return SiteRig(
        name=name,
        root=root,
        user=user,
        site_rse=site_rse,
        remote_rse=remote_rse,
        emulators=emulators,
        services_settings=settings,
        shared=shared,
        owns_shared=owns_shared,
    )
