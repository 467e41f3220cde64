"""One site's real services, opened together: staging, user storage, images, sessions.

:class:`SiteServicesSettings` says where a site's Skaha, Rucio, Cavern, Harbor (and optionally
PrepareData) are and with which credentials; :func:`open_site_services` builds the real
adapters from it (:class:`~worksteps.site.rucio.RucioStaging`,
:class:`~worksteps.site.cavern.CavernStorage`, :class:`~worksteps.site.harbor.HarborImages`,
:class:`~worksteps.site.skaha.SkahaSessions`) as one :class:`SiteServices`.

Identity: one service account per site. The broker acts at a site as that account in every
service, never with the requesting user's token (which it does not hold once the user has
left). The account is a Rucio account with userpass credentials, a Harbor user allowed to
replicate, and a bearer token that Skaha and Cavern both know as the user ``user``. So the
data of every workstep prepared at a site lives under ``/home/<user>/`` in Cavern, each
workstep in its own area, and every session runs as ``user`` and sees that home at
``<skaha.home_mount>/<user>`` (``/arc/home/<user>`` on CANFAR). Delegating the user's own
token (so that data lands in the user's own home) is a later step; nothing below assumes it.

Invariants:

- Secrets are :class:`~pydantic.SecretStr`: a settings object can be logged or shown in
  errors without leaking them.
- Opening makes no network call; the first call of each adapter is the first contact, so a
  site that is down is reported by the engine's first step, as a transient site error.
- :func:`open_site_services` must run inside the event loop that will use the services,
  because the Skaha client binds itself to the loop of its first call. One ``SiteServices``
  per loop; :meth:`SiteServices.aclose` in the same loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from worksteps.site.cavern import CavernStorage
from worksteps.site.harbor import HarborImages
from worksteps.site.images import ImageRegistry
from worksteps.site.preparedata import PrepareDataStaging
from worksteps.site.rucio import RucioStaging
from worksteps.site.sessions import SessionService
from worksteps.site.skaha import SkahaSessions
from worksteps.site.staging import DataStaging
from worksteps.site.storage import UserStorage

__all__ = [
    "CavernSettings",
    "HarborSettings",
    "PrepareDataSettings",
    "RucioSettings",
    "SiteServices",
    "SiteServicesSettings",
    "SkahaSettings",
    "open_site_services",
]

_HTTP_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"

HttpUrl = Annotated[str, Field(pattern=_HTTP_URL, max_length=2048)]
Timeout = Annotated[float, Field(gt=0, le=600)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=4096)]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SkahaSettings(_Settings):
    """The site's Skaha session service."""

    url: HttpUrl = Field(
        description="Versioned API base ending in /skaha/v1, e.g. https://ws-uv.canfar.net/skaha/v1."
    )
    token: Secret = Field(description="Bearer token of the site's service account.")
    home_mount: str = Field(
        "/arc/home",
        pattern=r"^/?[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
        max_length=256,
        description=(
            "Where a session sees Cavern's /home: '/arc/home' at CANFAR. The emulator mounts "
            "it relative to the session's working directory ('arc/home')."
        ),
    )
    timeout: int = Field(30, ge=1, le=600, description="Seconds each HTTP call may take.")

    @model_validator(mode="after")
    def _versioned(self) -> SkahaSettings:
        if not self.url.rstrip("/").endswith("/skaha/v1"):
            raise ValueError(f"skaha url {self.url!r} must end in /skaha/v1")
        return self


class RucioSettings(_Settings):
    """The Rucio instance that holds the site's storage element (RSE)."""

    host: HttpUrl = Field(description="Rucio server URL, e.g. https://rucio.srcnet.skao.int.")
    auth_host: HttpUrl | None = Field(
        None, description="Rucio authentication server URL; the server itself when absent."
    )
    account: str = Field(
        pattern=r"^[a-z0-9-_]{1,25}$", description="Rucio account owning the staging rules."
    )
    username: str = Field(min_length=1, max_length=255, description="userpass identity name.")
    password: Secret = Field(description="userpass identity password.")
    rse: str = Field(
        min_length=1,
        max_length=500,
        description="The site's RSE, or an RSE expression selecting it: rules stage data here.",
    )
    activity: str | None = Field(
        None,
        max_length=100,
        description="Transfer activity of rules; Rucio's default if None.",
    )
    vo: str = Field("def", pattern=r"^[a-z0-9]{1,3}$", description="Rucio VO (multi-VO servers).")
    ca_cert: Path | None = Field(None, description="CA bundle for https; the system's if None.")
    timeout: int = Field(60, ge=1, le=600, description="Seconds each HTTP call may take.")


class CavernSettings(_Settings):
    """The site's Cavern (VOSpace) user storage."""

    resource_id: str = Field(
        pattern=r"^ivo://[A-Za-z0-9.\-~]+/[A-Za-z0-9.\-]+$",
        max_length=512,
        description="IVOA resource ID, e.g. ivo://canfar.net/cavern; unique within a process.",
    )
    capabilities_url: HttpUrl = Field(
        description="The service's VOSI capabilities URL, e.g. https://.../cavern/capabilities."
    )
    token: Secret = Field(description="Bearer token of the site's service account.")
    registry_dir: Path | None = Field(
        None,
        description=(
            "Directory of the process-wide cadcutils registry cache; a private temporary one "
            "when absent."
        ),
    )
    timeout: Timeout = Field(30.0, description="Seconds each HTTP call may take.")


class HarborSettings(_Settings):
    """The site's Harbor, and the registry endpoint it copies images in from."""

    url: HttpUrl = Field(description="Harbor base URL (REST /api/v2.0 and OCI /v2/ below it).")
    username: str = Field(
        min_length=1, max_length=255, description="Harbor user (or robot) allowed to replicate."
    )
    password: Secret = Field(description="Password or robot secret of that user.")
    upstream: str = Field(
        "upstream",
        min_length=1,
        max_length=255,
        description=(
            "Name of the Harbor registry endpoint (/api/v2.0/registries) to replicate from; "
            "its URL is configured in Harbor itself."
        ),
    )
    upstream_username: str | None = Field(
        None, max_length=255, description="User reading manifests upstream; anonymous if None."
    )
    upstream_password: Secret | None = Field(None, description="Password of upstream_username.")
    timeout: Timeout = Field(30.0, description="Seconds each HTTP call may take.")

    @model_validator(mode="after")
    def _upstream_pair(self) -> HarborSettings:
        if (self.upstream_username is None) != (self.upstream_password is None):
            raise ValueError("give both upstream_username and upstream_password, or neither")
        return self


class PrepareDataSettings(_Settings):
    """The site's CANSRC PrepareData gatekeeper (stages and copies into Cavern at once)."""

    url: HttpUrl = Field(description="Base URL; the API is POST /preparedata below it.")
    token: Secret = Field(description="Bearer token of the site's service account.")
    timeout: Timeout = Field(30.0, description="Seconds each HTTP call may take.")


class SiteServicesSettings(_Settings):
    """Endpoints and credentials of one site's services, all used as one service account."""

    site: str = Field(
        min_length=1, max_length=100, description="The site's name (for messages and logs)."
    )
    user: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$",
        description=(
            "The user name Skaha and Cavern know the service account as: workstep data goes "
            "under /home/<user>/ and sessions run as this user."
        ),
    )
    skaha: SkahaSettings = Field(description="The session service.")
    rucio: RucioSettings = Field(description="Data staging by replication rules.")
    cavern: CavernSettings = Field(description="User storage.")
    harbor: HarborSettings = Field(description="The image registry.")
    preparedata: PrepareDataSettings | None = Field(
        None, description="PrepareData, when the site runs it (optional)."
    )


@dataclass
class SiteServices:
    """The real adapters of one site, bound to the event loop that opened them.

    ``staging`` is Rucio (rules to the site's RSE); ``preparedata`` is the site's PrepareData
    when configured (it also copies into Cavern), else None. ``user`` and ``home_mount`` say
    where the service account's data is: see :meth:`session_path`.
    """

    site: str
    user: str
    home_mount: str
    staging: DataStaging
    storage: UserStorage
    images: ImageRegistry
    sessions: SessionService
    preparedata: DataStaging | None = None
    _closed: bool = field(default=False, init=False, repr=False)

    def session_path(self, node_uri: str) -> str:
        """The path at which a session sees the node ``node_uri`` of the user's home.

        ``vos://auth~cavern/home/<user>/ws-1/x.fits`` -> ``/arc/home/<user>/ws-1/x.fits``
        (``arc/home/...``, relative to the working directory, in the emulator). Raises
        ValueError for a URI outside ``/home/<user>``, which sessions do not see.
        """
        path = unquote(urlsplit(node_uri).path)
        home = f"/home/{self.user}"
        if urlsplit(node_uri).scheme != "vos" or not (path == home or path.startswith(home + "/")):
            raise ValueError(f"{node_uri} is not in {home}, which sessions see")
        return self.home_mount.rstrip("/") + path.removeprefix("/home")

    async def aclose(self) -> None:
        """Close the HTTP clients the adapters hold (Skaha, Harbor). Idempotent."""
        if self._closed:
            return
        self._closed = True
        failure: BaseException | None = None
        for adapter in (self.sessions, self.images, self.storage, self.staging, self.preparedata):
            close = getattr(adapter, "aclose", None)
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:  # close the others anyway, then report the first
                failure = failure or exc
        if failure is not None:
            raise failure

    async def __aenter__(self) -> SiteServices:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def open_site_services(settings: SiteServicesSettings) -> SiteServices:
    """Build the real adapters of a site. Call it in the event loop that will use them."""
    rucio = settings.rucio
    staging = RucioStaging(
        host=rucio.host,
        auth_host=rucio.auth_host,
        account=rucio.account,
        username=rucio.username,
        password=rucio.password.get_secret_value(),
        rse_expression=rucio.rse,
        vo=rucio.vo,
        activity=rucio.activity,
        ca_cert=str(rucio.ca_cert) if rucio.ca_cert else None,
        timeout=rucio.timeout,
    )
    cavern = settings.cavern
    storage = CavernStorage(
        cavern.resource_id,
        cavern.capabilities_url,
        cavern.token.get_secret_value(),
        registry_dir=cavern.registry_dir,
        timeout=cavern.timeout,
    )
    harbor = settings.harbor
    upstream_credentials = None
    if harbor.upstream_username is not None and harbor.upstream_password is not None:
        upstream_credentials = (
            harbor.upstream_username,
            harbor.upstream_password.get_secret_value(),
        )
    images = HarborImages(
        harbor.url,
        credentials=(harbor.username, harbor.password.get_secret_value()),
        upstream=harbor.upstream,
        upstream_credentials=upstream_credentials,
        timeout=harbor.timeout,
    )
    try:
        sessions = SkahaSessions(
            settings.skaha.url,
            settings.skaha.token.get_secret_value(),
            timeout=settings.skaha.timeout,
        )
    except BaseException:
        await images.aclose()
        raise
    preparedata = None
    if settings.preparedata is not None:
        preparedata = PrepareDataStaging(
            settings.preparedata.url,
            settings.preparedata.token.get_secret_value(),
            replicas_from=staging,
            timeout=settings.preparedata.timeout,
        )
    return SiteServices(
        site=settings.site,
        user=settings.user,
        home_mount=settings.skaha.home_mount,
        staging=staging,
        storage=storage,
        images=images,
        sessions=sessions,
        preparedata=preparedata,
    )
