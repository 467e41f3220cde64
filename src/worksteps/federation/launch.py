"""Start the embedded federation in dependency order, and stop it in reverse.

Order: the development OIDC issuer; the shared data lake (Rucio with one storage element per
site, the door of its replicas) and the central registry; each site's PrepareData, Cavern,
Harbor and Skaha; each site's broker; then the user-facing services. Every service is a real
HTTP server on loopback (uvicorn in a thread), so every call crosses a socket as in
production. ``federation.json`` in the data directory lists every address.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from worksteps.broker.api.app import create_app as create_broker
from worksteps.broker.settings import BrokerSettings, EngineSettings, EstimateSettings
from worksteps.core.auth import AuthSettings
from worksteps.core.serving import ServedApp, free_port, start_in_thread
from worksteps.emulators.oidc import LocalIssuer
from worksteps.emulators.rig import (
    DemoDataset,
    PlacedFile,
    RigImage,
    SharedServices,
    SiteRig,
    start_shared_services,
    start_site,
)
from worksteps.federation.config import FederationConfig, SiteSpec
from worksteps.federation.frontdoor import (
    serve_discovery,
    serve_gateway,
    serve_issuer,
    write_sites_file,
)
from worksteps.schema.isotime import parse_duration

__all__ = ["Federation", "RunningSite", "start_federation"]

log = logging.getLogger(__name__)
SERVICE_USER = "worksteps"


@dataclass
class RunningSite:
    """One site of the federation: its emulated services and its broker."""

    spec: SiteSpec
    rig: SiteRig
    broker: ServedApp
    settings: BrokerSettings

    @property
    def url(self) -> str:
        return self.broker.url


@dataclass
class Federation:
    """Everything ``worksteps up`` started; :meth:`stop` ends it all, sessions included."""

    config: FederationConfig
    issuer: LocalIssuer
    shared: SharedServices
    sites: list[RunningSite] = field(default_factory=list)
    servers: dict[str, ServedApp] = field(default_factory=dict)  # user-facing, in start order

    @property
    def gateway(self) -> str:
        """The Science Gateway: web pages at ``/``, the user API at ``/api``."""
        return self.servers["gateway"].url

    @property
    def registry_host(self) -> str:
        """Host of the central registry: image references every site resolves."""
        return self.shared.registry_host

    def image(self, reference: str) -> str:
        """The full reference of a federation image, e.g. ``skaha/astroml:24.07``."""
        return f"{self.registry_host}/{reference}"

    def site(self, name: str) -> RunningSite:
        for site in self.sites:
            if site.spec.name == name:
                return site
        raise KeyError(name)

    def url(self, service: str) -> str:
        return self.servers[service].url

    def describe(self) -> dict[str, Any]:
        """Every address, for people (``worksteps up`` prints it) and for programs."""
        services = {name: served.url for name, served in self.servers.items()}
        if "gateway" in services:
            services["editor"] = services["execution"] = f"{services['gateway']}/api"
        return {
            "services": services,
            "sites": {
                s.spec.name: {
                    "broker": s.url,
                    "rse": s.rig.site_rse,
                    **{k: e.url for k, e in s.rig.own_emulators.items()},
                }
                for s in self.sites
            },
            "rucio": self.shared.rucio.url,
            "registry": self.shared.upstream.url,
            "images": [self.image(i.reference) for i in self.config.images],
            "rucio_scope": "demo",
        }

    def stop(self) -> None:
        """User-facing services first, then brokers (their engines stop), then the sites
        (Skaha ends its sessions' processes), the data lake and the issuer."""
        for served in reversed(list(self.servers.values())):
            with contextlib.suppress(Exception):
                served.stop()
        self.servers.clear()
        for site in reversed(self.sites):
            with contextlib.suppress(Exception):
                site.broker.stop()
        for site in reversed(self.sites):
            with contextlib.suppress(Exception):
                site.rig.stop()
        self.sites.clear()
        self.shared.stop()

    def __enter__(self) -> Federation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _serve(app: Any, host: str, port: int | None) -> ServedApp:
    return start_in_thread(app, host=host, port=port or free_port(host))


def _start_site(
    config: FederationConfig, spec: SiteSpec, shared: SharedServices, data: Path, issuer: str
) -> RunningSite:
    images = [
        RigImage(i.name, i.tag, tuple(i.kinds), tuple(i.layers), cached=i.reference in spec.cached)
        for i in config.images
    ]
    rig = start_site(
        spec.name,
        data / "sites" / spec.name / "services",
        shared,
        site_rse=spec.rse,
        images=images,
        storage_bandwidth=spec.storage_bandwidth,
        image_pull_rate=spec.image_pull_rate,
        start_latency=spec.start_latency,
    )
    try:
        port = spec.broker_port or free_port(config.host)
        notebook = next((i for i in config.images if "notebook" in i.kinds), config.images[0])
        settings = BrokerSettings(
            site=spec.name,
            database_url=f"sqlite:///{data / 'sites' / spec.name / 'broker.sqlite'}",
            base_url=f"http://{config.host}:{port}",
            capacity=spec.capacity,
            offer_ttl=parse_duration(config.offer_ttl),
            services=rig.services_settings,
            auth=AuthSettings(issuer=issuer),
            engine=EngineSettings(notebook_image=f"{shared.registry_host}/{notebook.reference}"),
            # until the site's own history says otherwise, assume what the emulators do
            estimates=EstimateSettings(
                transfer_rate=config.bandwidth,
                copy_rate=spec.storage_bandwidth,
                pull_rate=spec.image_pull_rate,
                session_start=timedelta(seconds=spec.start_latency + 2.0),
                cache_seconds=5.0,
            ),
        )
        broker = _serve(create_broker(settings), config.host, port)
    except BaseException:
        rig.stop()
        raise
    return RunningSite(spec, rig, broker, settings)


def start_federation(config: FederationConfig) -> Federation:
    """Start the whole federation described by ``config``; stopped again if a part fails."""
    data = config.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    gateway = f"http://{config.host}:{config.port or free_port(config.host)}"
    issuer_port = free_port(config.host)
    issuer = LocalIssuer(f"http://{config.host}:{issuer_port}", key_file=data / "issuer-key.json")
    issuer_served = serve_issuer(config, issuer, gateway, data)
    shared: SharedServices | None = None
    try:
        shared = start_shared_services(
            data / "lake",
            rses={site.rse: site.name for site in config.sites},
            files=[
                PlacedFile(f.name, f.size, tuple(s.upper() for s in f.sites)) for f in config.files
            ],
            datasets=[DemoDataset(d.name, tuple(d.files)) for d in config.datasets],
            images=[
                RigImage(i.name, i.tag, tuple(i.kinds), tuple(i.layers)) for i in config.images
            ],
            user=SERVICE_USER,
            token=secrets.token_urlsafe(24),
            password=secrets.token_urlsafe(16),
            bandwidth=config.bandwidth,
        )
        federation = Federation(config, issuer, shared, servers={"issuer": issuer_served})
    except BaseException:
        issuer_served.stop()
        if shared is not None:
            shared.stop()
        raise
    try:
        for spec in config.sites:
            federation.sites.append(_start_site(config, spec, shared, data, issuer.issuer))
        federation.servers["discovery"] = serve_discovery(config, shared.registry_host)
        sites_file = data / "sites.yaml"
        write_sites_file(sites_file, config, {s.spec.name: s.url for s in federation.sites})
        federation.servers["gateway"] = serve_gateway(
            config, issuer, gateway, data, sites_file, shared.registry_host
        )
        # written whole, then renamed: whoever waits for the file never reads it half-written
        described = data / "federation.json.part"
        described.write_text(json.dumps(federation.describe(), indent=2), encoding="utf-8")
        described.replace(data / "federation.json")
    except BaseException:
        federation.stop()
        raise
    return federation
