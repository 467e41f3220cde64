"""The user-facing half of the embedded federation: sign-in, Software Discovery, and the
Science Gateway holding the Workstep Editor and the execution service.

The gateway's address is fixed before anything starts, because the issuer must know where it
may send signed-in users back to, and the editor which origin it may pass tokens to.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml
from pydantic import SecretStr

from worksteps.core.auth import AuthSettings
from worksteps.core.database import Database
from worksteps.core.service_token import ServiceClientSettings
from worksteps.core.serving import ServedApp, start_in_thread
from worksteps.editor.fetch import Fetcher
from worksteps.editor.service import EditorService
from worksteps.editor.settings import EditorSettings, FetchSettings
from worksteps.editor.store import WorkstepStore
from worksteps.editor.templates import Catalogue
from worksteps.emulators import softwarediscovery
from worksteps.emulators.oidc import LocalIssuer
from worksteps.emulators.oidc import create_app as create_issuer
from worksteps.emulators.oidc.signin import DevUser, OidcClient, SignInConfig
from worksteps.emulators.rig import RigImage
from worksteps.execution.api import build_registry
from worksteps.execution.service import ExecutionService
from worksteps.execution.settings import ExecutionSettings
from worksteps.federation.config import FederationConfig
from worksteps.gateway.app import create_app as create_gateway
from worksteps.gateway.settings import GatewaySettings

__all__ = [
    "CLI_CLIENT",
    "EXECUTION_CLIENT",
    "GATEWAY_CLIENT",
    "serve_gateway",
    "serve_issuer",
    "write_sites_file",
]

GATEWAY_CLIENT = "worksteps-gateway"
CLI_CLIENT = "worksteps-cli"
EXECUTION_CLIENT = "worksteps-execution"


def serve_issuer(
    config: FederationConfig, issuer: LocalIssuer, gateway: str, data: Path
) -> ServedApp:
    """The development sign-in: the federation's users, the gateway and the CLI as clients,
    and the execution service as a confidential client of its own (an admin: it follows
    every user's sessions)."""
    sign_in = SignInConfig(
        users=[DevUser(name=u.name, display=u.display, roles=u.roles) for u in config.users],
        clients=[
            OidcClient(
                client_id=GATEWAY_CLIENT,
                name="Worksteps Science Gateway",
                redirect_prefixes=[f"{gateway}/signin/callback"],
            ),
            OidcClient(
                client_id=CLI_CLIENT,
                name="worksteps command line",
                redirect_prefixes=["http://127.0.0.1/callback"],
                loopback_any_port=True,
            ),
            OidcClient(
                client_id=EXECUTION_CLIENT,
                name="Worksteps execution service",
                secret=SecretStr(_secret(data, "execution-client-secret")),
                service_roles=["admin"],
            ),
        ],
    )
    port = int(issuer.issuer.rsplit(":", 1)[1])
    return start_in_thread(create_issuer(issuer, sign_in), host=config.host, port=port)


def serve_discovery(config: FederationConfig, registry_host: str) -> ServedApp:
    """Software Discovery listing the federation's images with their metadata."""
    images = [RigImage(i.name, i.tag, tuple(i.kinds), tuple(i.layers)) for i in config.images]
    entries = softwarediscovery.entries_from_images(images, registry_host)
    app = softwarediscovery.create_app(softwarediscovery.SoftwareDiscoveryConfig(entries=entries))
    return start_in_thread(app, host=config.host)


def write_sites_file(path: Path, config: FederationConfig, brokers: dict[str, str]) -> None:
    """The execution service's sites file: each broker with what its site can do."""
    sites = []
    for spec in config.sites:
        kinds = sorted(
            {k for i in config.images for k in i.kinds}
        )  # every site can pull every image of the central registry
        sites.append(
            {
                "name": spec.name,
                "url": brokers[spec.name],
                "description": f"emulated SRCNet site {spec.name}",
                "capabilities": {
                    "sessions": kinds,
                    "cores": spec.capacity.cores,
                    "memory": spec.capacity.memory,
                    "gpus": spec.capacity.gpus,
                    "storage": spec.capacity.storage,
                    "data": [spec.rse],
                },
            }
        )
    path.write_text(yaml.safe_dump({"sites": sites}, sort_keys=False), encoding="utf-8")


def _secret(data: Path, name: str) -> str:
    """A random secret kept in the data directory, so that it survives a restart (sign-ins
    for the cookie secret, the service's client for its client secret)."""
    path = data / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_urlsafe(48)
    path.write_text(secret, encoding="utf-8")
    path.chmod(0o600)
    return secret


def serve_gateway(
    config: FederationConfig,
    issuer: LocalIssuer,
    gateway: str,
    data: Path,
    sites_file: Path,
    registry_host: str,
) -> ServedApp:
    """The Science Gateway with the editor and the execution service inside it."""
    auth = AuthSettings(issuer=issuer.issuer)
    api = f"{gateway}/api"
    editor_settings = EditorSettings(
        database_url=f"sqlite:///{data / 'editor.sqlite'}",
        auth=auth,
        public_url=api,
        image_registry=registry_host,
        fetch=FetchSettings(trusted_origins=[gateway]),
    )
    editor = EditorService(
        editor_settings,
        WorkstepStore(Database(editor_settings.database_url)),
        Fetcher(editor_settings.fetch),
        Catalogue.load(editor_settings.templates_path),
    )
    execution_settings = ExecutionSettings(
        database_url=f"sqlite:///{data / 'execution.sqlite'}",
        sites_file=sites_file,
        auth=auth,
        editor_urls=[api],
        service_client=ServiceClientSettings(
            token_url=f"{issuer.issuer}/token",
            client_id=EXECUTION_CLIENT,
            client_secret=SecretStr(_secret(data, "execution-client-secret")),
        ),
    )
    execution = ExecutionService(execution_settings, build_registry(execution_settings))
    settings = GatewaySettings(
        auth=auth,
        client_id=GATEWAY_CLIENT,
        cli_client_id=CLI_CLIENT,
        base_url=gateway,
        cookie_secret=_secret(data, "cookie-secret"),
    )
    app = create_gateway(settings, editor=editor, execution=execution)
    port = int(gateway.rsplit(":", 1)[1])
    return start_in_thread(app, host=config.host, port=port)
