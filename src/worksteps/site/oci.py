"""Reading images over the OCI distribution API, as any registry client would.

Manifests go through ``oras`` for its registry token dance. One client serves one repository,
because the token it caches is scoped to one repository. Blobs are streamed with httpx and that
token, so bytes are hashed and progress is reported as they arrive (oras has no progress hook).

Invariants:

- Nothing here trusts what a registry says. A manifest is hashed and checked against its
  announced ``Docker-Content-Digest``. A blob counts only once its bytes hash to its digest and
  number exactly its size. Either failure raises
  :class:`~worksteps.site.images.DigestMismatch`.
- Each HTTP call is made once and with a timeout. oras retries by itself, sleeping from seconds
  to minutes, but retry policy belongs to the broker.
- Errors leave only as :mod:`worksteps.site.errors`. The caller names the ``service`` they are
  reported under, because this module speaks for whichever adapter uses it.
- The blocking oras/requests calls run in a worker thread and never on the event loop.
- ``oras`` is imported when the first registry client is made, not with this module: it
  pulls in jsonschema and its format checkers, about two seconds of a service's start-up.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import requests

from worksteps.site.errors import PermanentSiteError, TransientSiteError, classify_status
from worksteps.site.images import DigestMismatch, ImageRef, ProgressCallback
from worksteps.site.threads import run_blocking

__all__ = [
    "MANIFEST_TYPES",
    "Credentials",
    "Manifest",
    "OneShotRegistry",
    "error_message",
    "fetch_manifest",
    "in_thread",
    "landed_bytes",
    "stream_blobs",
]

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
T = TypeVar("T")
Credentials = tuple[str, str]


@functools.cache
def _oras_registry() -> type[Any]:
    """oras' ``Registry`` with each HTTP call made once (no retry loop), imported lazily."""
    import oras.provider

    class Registry(oras.provider.Registry):  # type: ignore[misc]
        do_request = oras.provider.Registry.do_request.__wrapped__

    return Registry


class OneShotRegistry:
    """oras' registry client, making each HTTP call once and never waiting forever."""

    def __init__(
        self, base_url: str, credentials: Credentials | None, timeout: float, *, service: str
    ):
        parts = urlsplit(base_url)
        self._client = _oras_registry()(hostname=parts.netloc, insecure=parts.scheme == "http")
        self.base_url = base_url
        self.service = service
        self.token_status: int | None = None
        """The status of the token service's last answer (oras does not say why it failed)."""
        session = self._client.session
        session.request = functools.partial(session.request, timeout=timeout)
        session.hooks["response"].append(self._note_token_answer)
        if credentials:
            self._client.auth.set_basic_auth(*credentials)

    @property
    def auth(self) -> Any:
        """oras' authentication state (``.token``: the registry token it obtained)."""
        return self._client.auth

    def _note_token_answer(self, response: requests.Response, **_: Any) -> None:
        if not response.url.startswith(self.base_url + "/v2/"):
            self.token_status = response.status_code

    def do_request(
        self, url: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> requests.Response:
        """One HTTP call through oras (which answers a Bearer challenge by itself).

        oras raises the same ValueError whatever the token service answered; the status it
        answered decides: 5xx and 429 are worth retrying, a refusal of the credentials is not.
        """
        self.token_status = None
        try:
            response: requests.Response = self._client.do_request(url, method, headers=headers)
        except ValueError as exc:
            status = self.token_status
            message = f"token service: {exc} (HTTP {status})"
            if status is not None and (status == 429 or status >= 500):
                raise TransientSiteError(self.service, "authenticate", message, status) from exc
            raise PermanentSiteError(self.service, "authenticate", message, 401) from exc
        return response

    def __enter__(self) -> OneShotRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.session.close()


@dataclass(frozen=True)
class Manifest:
    """An image manifest whose bytes hashed to ``digest``."""

    digest: str
    media_type: str
    length: int
    blobs: tuple[tuple[str, int], ...]  # (digest, size): config, then layers

    @property
    def blobs_size(self) -> int:
        return sum(size for _, size in self.blobs)


async def fetch_manifest(
    registry: OneShotRegistry, image: ImageRef, operation: str, absent: tuple[int, ...]
) -> Manifest | None:
    """The manifest through oras, its digest checked; None for the ``absent`` statuses."""
    service = registry.service
    url = f"{registry.base_url}/v2/{image.name}/manifests/{image.reference}"
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    response = await in_thread(
        service, operation, lambda: registry.do_request(url, "GET", headers=headers)
    )
    if response.status_code in absent:
        return None
    if response.status_code != 200:
        error = classify_status(response.status_code)
        raise error(service, operation, error_message(response), response.status_code)
    raw: bytes = response.content
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    announced = response.headers.get("Docker-Content-Digest")
    if announced and announced != digest:
        raise DigestMismatch(service, operation, f"manifest is {digest}, not {announced}")
    try:
        document = json.loads(raw)
        pairs = tuple(
            (str(b["digest"]), int(b["size"])) for b in [document["config"], *document["layers"]]
        )
        media_type = str(document.get("mediaType") or response.headers.get("Content-Type", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise PermanentSiteError(service, operation, f"unreadable manifest: {exc}") from exc
    return Manifest(digest, media_type, len(raw), pairs)


def landed_bytes(registry: OneShotRegistry, name: str, manifest: Manifest) -> int:
    """Bytes of ``manifest``'s blobs that ``registry`` already has for repository ``name``.

    Blocking: call it through :func:`in_thread`.
    """
    base = f"{registry.base_url}/v2/{name}/blobs/"
    return sum(
        size
        for digest, size in manifest.blobs
        if registry.do_request(base + digest, "HEAD").status_code == 200
    )


async def stream_blobs(
    client: httpx.AsyncClient,
    base_url: str,
    name: str,
    manifest: Manifest,
    *,
    token: str | None,
    credentials: Credentials | None,
    progress: ProgressCallback | None,
    service: str,
    operation: str,
) -> None:
    """Stream every blob of ``manifest`` from repository ``name``, hashing each as it comes.

    ``token`` is the registry token oras obtained for that repository; without one the
    ``credentials`` go as basic auth. ``progress`` sees bytes received over all blobs.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    auth = None if token else credentials
    done = 0
    for digest, size in manifest.blobs:
        url = f"{base_url}/v2/{name}/blobs/{digest}"
        hasher, received = hashlib.sha256(), 0
        try:
            async with client.stream(
                "GET", url, headers=headers, auth=auth, follow_redirects=True
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    error = classify_status(response.status_code)
                    raise error(service, operation, error_message(response), response.status_code)
                async for chunk in response.aiter_bytes():
                    hasher.update(chunk)
                    received += len(chunk)
                    if progress:
                        progress(done + received, manifest.blobs_size)
        except httpx.TimeoutException as exc:
            raise TransientSiteError(service, operation, f"timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise TransientSiteError(service, operation, f"blob {digest}: {exc!r}") from exc
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest or received != size:
            raise DigestMismatch(
                service, operation, f"blob {digest}: got {received} bytes hashing to {actual}"
            )
        done += received


async def in_thread(service: str, operation: str, call: Callable[[], T]) -> T:
    """Run a blocking oras/requests call in a thread, converting its errors."""
    try:
        return await run_blocking(call)
    except requests.Timeout as exc:
        raise TransientSiteError(service, operation, f"timed out: {exc!r}") from exc
    except requests.RequestException as exc:
        raise TransientSiteError(service, operation, f"unreachable: {exc!r}") from exc
    except ValueError as exc:  # oras, outside do_request: the credentials were refused
        raise PermanentSiteError(service, operation, str(exc), 401) from exc


def error_message(response: httpx.Response | requests.Response) -> str:
    """The ``errors`` list of a registry's (and Harbor's) error body, else the raw answer."""
    try:
        errors = response.json()["errors"]
        return "; ".join(str(e.get("message", e.get("code"))) for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
