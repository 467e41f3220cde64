"""Cavern (VOSpace 2.1) user storage through the ``vos`` client.

How the ``vos``/``cadcutils`` client is tamed:

- **Service discovery.** cadcutils resolves ``ivo://<auth>/cavern`` through a registry cache
  file (``<dir>/resource-caps``) that it refreshes from the CADC registry on the internet once
  the file is 10 minutes old. :class:`CadcRegistry` owns that file for the whole process: the
  directory is private (a temporary one unless configured), every adapter registers its
  ``resource_id = capabilities URL`` line, and the file is rewritten before each call so it is
  never stale and the public registry is never asked. The cached capabilities of a resource
  are dropped when it registers, so a moved service is rediscovered at once. Resource IDs
  must be unique within a process. cadcutils' cache is not safe for concurrent discovery, so
  each adapter discovers its service once, in one thread, and :class:`CadcRegistry` creates
  and refreshes every cache file itself; a discovery failure is then a real one (an unknown
  resource is permanent, an unreachable service transient). ``vos.Client`` would also ask
  pypi.org whether a newer ``vos`` exists; that check is marked as done at import.
- **Policy stays with the caller.** The client's own retry loop (up to 6 retries, 30 s apart
  on 503) is switched off and every request is bounded by ``timeout``: the broker's engine
  decides whether and when to retry.
- **Threads.** The client is synchronous; each call runs in a worker thread.
- **Listings** are asked for whole (no ``limit``): Cavern 0.10 ignores ``limit`` and refuses
  the ``uri=`` resume parameter, and ``vos`` resumes by itself when a service caps a page at
  more than 500 children.
- **Transfers.** ``vos`` has no call that starts an async transfer without waiting for it, nor
  any for pullToVoSpace or a node-to-node *copy*, so :meth:`CavernStorage.place` posts the
  VOSpace transfer document itself to the service's ``#transfers`` endpoint (discovered by
  ``vos``) through the ``vos`` client's authenticated session, and polls the UWS job the same
  way. Real Cavern 0.10 copies between nodes but refuses pullToVoSpace (a ``place`` from an
  http URL then ends in phase ERROR); the emulator also accepts it. Byte progress is read
  from the emulator's ``uws:jobInfo`` extension; real Cavern reports phases only.

Errors: cadcutils/requests exceptions and the ``OSError``\\ s ``vos`` raises are converted to
:mod:`worksteps.site.errors` at this boundary (5xx, 429, timeouts, refused connections and an
unreachable capabilities URL are transient).
"""

from __future__ import annotations

import errno
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests
import requests.adapters
import vos
from cadcutils import exceptions as cadc_errors
from cadcutils import util as cadc_util
from defusedxml import ElementTree as SafeET

from .cadc_registry import REGISTRY, CadcRegistry
from .errors import PermanentSiteError, SiteError, SiteNotFound, TransientSiteError, classify_status
from .storage import StorageEntry, TransferPhase, TransferStatus
from .threads import run_blocking

__all__ = ["CadcRegistry", "CavernStorage"]

T = TypeVar("T")
SERVICE = "cavern"
VOS_NS = "http://www.ivoa.net/xml/VOSpace/v2.0"
UWS_NS = "{http://www.ivoa.net/xml/UWS/v1.0}"
PROGRESS = "{urn:worksteps:cavern-emulator}progress"
HTTPGET = "ivo://ivoa.net/vospace/core#httpget"

cadc_util.check_version.checked.append("vos")  # never ask pypi.org from a service


class _BoundedTimeout(requests.adapters.HTTPAdapter):
    """Caps every request's timeout (cadcutils otherwise waits up to 120 s)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        return super().send(request, stream, self._timeout, verify, cert, proxies)


def _is_network(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(exc, RuntimeError) and "Cannot get content" in str(exc):
        return True  # capabilities unreachable and not cached
    return isinstance(exc, cadc_errors.TransferException)


def _clue(exc: BaseException | None) -> int | str | None:
    """What went wrong, from the nearest link of ``exc``'s chain that says: the HTTP status
    (vos often re-raises it as an errno-only OSError) or ``"network"``.

    The nearest wins: a timeout raised while a 409 was being handled is a timeout.
    """
    while exc is not None:
        response = getattr(getattr(exc, "orig_exception", None), "response", None)
        response = response if response is not None else getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        if _is_network(exc):
            return "network"
        nested = getattr(exc, "orig_exception", None)
        exc = nested if isinstance(nested, BaseException) else (exc.__cause__ or exc.__context__)
    return None


def convert(operation: str, exc: BaseException) -> SiteError:
    """The site error for an exception raised by vos, cadcutils or requests."""
    message = str(exc).strip() or type(exc).__name__
    clue = _clue(exc)
    if clue is None and isinstance(exc, OSError) and isinstance(exc.errno, int):
        clue = {errno.ENOENT: 404, errno.EEXIST: 409, errno.EACCES: 403}.get(exc.errno)
        clue = clue or (exc.errno if 400 <= exc.errno < 600 else None)
    if isinstance(clue, int):
        return classify_status(clue)(SERVICE, operation, message, clue)
    if clue == "network":
        return TransientSiteError(SERVICE, operation, message)
    return PermanentSiteError(SERVICE, operation, message)


def _check_path(text: str, what: str) -> list[str]:
    parts = text.strip("/").split("/") if text.strip("/") else []
    for part in parts:
        if part in ("", ".", "..") or "\x00" in part or "\\" in part:
            raise PermanentSiteError(SERVICE, "validate", f"invalid {what} {text!r}")
    return parts


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.rstrip("Z")).replace(tzinfo=UTC)
    except ValueError:
        return None


def _transfer_xml(target: str, direction: str, *, endpoint: str | None = None) -> bytes:
    root = ET.Element("vos:transfer", {"xmlns:vos": VOS_NS, "version": "2.1"})
    ET.SubElement(root, "vos:target").text = target
    ET.SubElement(root, "vos:direction").text = direction
    if endpoint is not None:
        protocol = ET.SubElement(root, "vos:protocol", {"uri": HTTPGET})
        ET.SubElement(protocol, "vos:endpoint").text = endpoint
    else:
        ET.SubElement(root, "vos:keepBytes").text = "true"
    out: bytes = ET.tostring(root, encoding="UTF-8")
    return out


def parse_job(ref: str, body: bytes) -> TransferStatus:
    """A :class:`TransferStatus` from a UWS job document."""
    root = SafeET.fromstring(body)
    phase_text = (root.findtext(f"{UWS_NS}phase") or "UNKNOWN").strip().upper()
    phase = TransferPhase(phase_text) if phase_text in TransferPhase.__members__ else None
    message = root.findtext(f"{UWS_NS}errorSummary/{UWS_NS}message")
    done = total = None
    progress = root.find(f"{UWS_NS}jobInfo/{PROGRESS}")
    if progress is not None:
        done = int(progress.get("bytes") or 0)
        total_text = progress.get("total")
        total = int(total_text) if total_text else None
    return TransferStatus(ref, phase or TransferPhase.UNKNOWN, done, total, message)


class CavernStorage:
    """:class:`~worksteps.site.storage.UserStorage` on a Cavern (VOSpace 2.1) service.

    It acts as the identity behind ``token`` (a user's delegated token or a site service
    account allowed to write in users' homes).
    """

    def __init__(
        self,
        resource_id: str,
        capabilities_url: str,
        token: str,
        *,
        registry_dir: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not resource_id.startswith("ivo://") or resource_id.count("/") != 3:
            raise ValueError(f"resource_id must look like ivo://authority/name: {resource_id}")
        REGISTRY.register(resource_id, capabilities_url, registry_dir)
        self.authority = resource_id.removeprefix("ivo://").replace("/", "~")
        self.root = f"vos://{self.authority}/"
        self._client = vos.Client(vospace_token=token)
        self._timeout = timeout
        self._discovery = threading.Lock()
        self._endpoints: Any = None

    def node_uri(self, path: str) -> str:
        """The node URI of an absolute path on this service."""
        return f"vos://{self.authority}{quote('/' + path.strip('/'), safe='/')}"

    def _session(self) -> Any:
        """The client's HTTP session for this service, discovering the service first.

        Discovery (registry, capabilities, endpoints) runs once, in one thread: vos would run
        it in every thread that finds no endpoints yet, and cadcutils' cache is not safe for
        that (see :class:`CadcRegistry`). Later calls find the endpoints in the client.
        """
        if self._endpoints is None:
            with self._discovery:
                if self._endpoints is None:
                    endpoints = self._client.get_endpoints(self.root)
                    session = endpoints.session
                    session.retry = False
                    adapter = _BoundedTimeout(self._timeout)
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                    self._endpoints = endpoints
        return self._endpoints.session

    async def _call(self, operation: str, work: Callable[[], T]) -> T:
        def guarded() -> T:
            REGISTRY.refresh()
            try:
                self._session()
                return work()
            except SiteError:
                raise
            except Exception as exc:
                raise convert(operation, exc) from exc

        return await run_blocking(guarded)

    def _own(self, uri: str, what: str) -> None:
        if urlsplit(uri).netloc.replace("!", "~") != self.authority:
            raise PermanentSiteError(SERVICE, "validate", f"{what} {uri} is not on {self.root}")
        _check_path(unquote(urlsplit(uri).path), what)

    async def ensure_area(self, user: str, path: str) -> str:
        _check_path(user, "user")
        if "/" in user or not user:
            raise PermanentSiteError(SERVICE, "ensure_area", f"invalid user {user!r}")
        parts = _check_path(path, "path")
        home = f"home/{user}"

        def work() -> str:
            if not parts:
                self._client.get_node(self.node_uri(home), limit=0, force=True)
            for depth in range(1, len(parts) + 1):
                uri = self.node_uri(home + "/" + "/".join(parts[:depth]))
                try:
                    self._client.mkdir(uri)
                except (cadc_errors.AlreadyExistsException, FileExistsError):
                    if not self._client.get_node(uri, limit=0, force=True).isdir():
                        raise PermanentSiteError(
                            SERVICE, "ensure_area", f"{uri} exists and is not a container"
                        ) from None
                except cadc_errors.NotFoundException as exc:
                    if depth == 1:
                        raise SiteNotFound(
                            SERVICE, "ensure_area", f"user {user} has no home", 404
                        ) from exc
                    raise
            return self.node_uri(home + ("/" + "/".join(parts) if parts else ""))

        return await self._call("ensure_area", work)

    async def place(self, source: str, destination: str) -> str:
        self._own(destination, "destination")
        if source.startswith("vos://"):
            self._own(source, "source")
            document = _transfer_xml(source, destination)
        elif urlsplit(source).scheme in ("http", "https"):
            document = _transfer_xml(destination, "pullToVoSpace", endpoint=source)
        else:
            raise PermanentSiteError(SERVICE, "place", f"unsupported source {source}")

        def work() -> str:
            session = self._session()
            created = session.post(
                self._client.get_endpoints(self.root).async_transfer,
                data=document,
                allow_redirects=False,
                headers={"Content-Type": "text/xml"},
            )
            job = self._redirect(created, "create transfer")
            started = session.post(
                job + "/phase",
                data={"PHASE": "RUN"},
                allow_redirects=False,
            )
            self._redirect(started, "run transfer")
            return job

        return await self._call("place", work)

    @staticmethod
    def _redirect(response: requests.Response, what: str) -> str:
        location = response.headers.get("Location")
        if response.status_code != 303 or not location:
            raise PermanentSiteError(
                SERVICE, "place", f"{what}: expected 303, got {response.status_code}"
            )
        return urljoin(response.url, location)

    async def transfer_status(self, ref: str) -> TransferStatus:
        def work() -> TransferStatus:
            response = self._session().get(ref, allow_redirects=True)
            return parse_job(ref, response.content)

        return await self._call("transfer_status", work)

    async def cancel_transfer(self, ref: str) -> None:
        def work() -> None:
            self._session().post(ref + "/phase", data={"PHASE": "ABORT"}, allow_redirects=False)

        await self._call("cancel_transfer", work)

    async def listing(self, uri: str) -> list[StorageEntry]:
        self._own(uri, "uri")

        def work() -> list[StorageEntry]:
            try:
                node = self._client.get_node(uri, limit=None, force=True)
                if not node.isdir():
                    return [self._entry(node)]
                return [self._entry(child) for child in node.node_list]
            finally:
                with vos.vos.nodeCache.volatile(uri):
                    pass  # the client caches every child it saw; forget them

        return await self._call("listing", work)

    @staticmethod
    def _entry(node: Any) -> StorageEntry:
        props: dict[str, str | None] = node.props
        length = props.get("length")
        return StorageEntry(
            uri=str(node.uri),
            name=unquote(str(node.name)),
            is_container=bool(node.isdir()),
            size=int(length) if length and length.isdigit() else None,
            modified=_date(props.get("date")),
            md5=props.get("MD5"),
        )

    async def delete(self, uri: str) -> None:
        self._own(uri, "uri")
        if urlsplit(uri).path.strip("/").count("/") < 2:
            raise PermanentSiteError(SERVICE, "delete", f"refusing to delete {uri}")

        def work() -> None:
            _ok, failed = self._client.recursive_delete(uri)
            if int(failed):
                raise PermanentSiteError(SERVICE, "delete", f"{failed} nodes under {uri} remain")

        await self._call("delete", work)
