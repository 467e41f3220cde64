"""Harbor as the site's :class:`~worksteps.site.images.ImageRegistry`.

Presence, replication policies and executions go through the Harbor REST API v2.0 (httpx).
Manifests and blobs are read over the OCI distribution API (:mod:`worksteps.site.oci`), from
the site registry and from the upstream one.

A copy into the site is a Harbor pull-mode replication from the upstream registry endpoint
named at construction: one policy per image (name and tag filters, manual trigger, reused
later) and one execution per copy, whose id is the external reference. Harbor reports only
task counts, so byte progress is observed as any registry client could: the layer list comes
from the upstream manifest, and a layer counts once the site registry has its blob.

Every REST call is made once and with a timeout, because retry policy belongs to the broker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from worksteps.site.errors import (
    PermanentSiteError,
    SiteError,
    SiteNotFound,
    TransientSiteError,
    classify_status,
)
from worksteps.site.images import (
    DigestMismatch,
    ImageInfo,
    ImageRef,
    ProgressCallback,
    PullState,
    PullStatus,
)
from worksteps.site.oci import (
    Credentials,
    Manifest,
    OneShotRegistry,
    error_message,
    fetch_manifest,
    in_thread,
    landed_bytes,
    stream_blobs,
)

__all__ = ["HarborImages"]

SERVICE = "harbor"
_STATES = {
    "InProgress": PullState.RUNNING,
    "Succeed": PullState.SUCCEEDED,
    "Failed": PullState.FAILED,
    "Stopped": PullState.STOPPED,
}


class HarborImages:
    """Images of one site's Harbor, copied in from one of its registry endpoints.

    ``upstream`` names the Harbor registry endpoint (``/api/v2.0/registries``) to replicate
    from; ``upstream_credentials`` read manifests there (anonymous when None).
    """

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        upstream: str = "upstream",
        upstream_credentials: Credentials | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._url = url.rstrip("/")
        self._host = urlsplit(url).netloc
        self._credentials = credentials
        self._upstream_name = upstream
        self._upstream_credentials = upstream_credentials
        self._timeout = timeout
        self._client = httpx.AsyncClient(auth=credentials, timeout=timeout)
        self._upstream: tuple[int, str] | None = None  # (registry id, url)
        self._manifests: dict[str, Manifest] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HarborImages:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- ImageRegistry ---------------------------------------------------------------------
    async def inspect(self, image: ImageRef) -> ImageInfo:
        found = await self._artifact(image)
        if found is not None:
            return found
        manifest = await self._upstream_manifest(image)
        if manifest is None:
            return ImageInfo(image, present=False)
        return _info(image, manifest, present=False)

    async def _artifact(self, image: ImageRef) -> ImageInfo | None:
        """The artifact in this site's Harbor; None when it is not here."""
        path = f"/projects/{image.project}/repositories/{_repo(image)}/artifacts/{image.reference}"
        response = await self._rest("GET", path, "inspect", params={"with_tag": "true"}, ok=404)
        if response.status_code != 200:
            return None
        artifact = _json(response, "inspect")
        with _reading("inspect"):
            return ImageInfo(
                image,
                present=True,
                digest=str(artifact["digest"]),
                size=int(artifact["size"]),
                media_type=artifact.get("manifest_media_type"),
                architecture=(artifact.get("extra_attrs") or {}).get("architecture"),
                reference=self._reference(image, str(artifact["digest"])),
                pushed_at=_time(artifact.get("push_time")),
            )

    async def ensure_available(self, image: ImageRef) -> str | None:
        # Each call may fail and fail the attempt: the upstream manifest of an earlier look
        # (an estimate, a failed attempt) is reused, as only its existence matters here.
        if await self._artifact(image) is not None:
            return None
        await self._upstream_manifest(image, reuse=True)
        if image.tag is None:
            raise PermanentSiteError(
                SERVICE, "replicate", f"{image}: replication selects tags; give the tag too"
            )
        upstream = await self._upstream_endpoint()
        if upstream is None:
            raise PermanentSiteError(
                SERVICE, "replicate", f"Harbor has no registry endpoint {self._upstream_name!r}"
            )
        policy = await self._policy(image, upstream[0])
        params = {"policy_id": policy, "status": "InProgress"}
        running = await self._rest("GET", "/replication/executions", "replicate", params=params)
        if executions := _json(running, "replicate"):
            with _reading("replicate"):
                return str(int(executions[0]["id"]))
        started = await self._rest(
            "POST", "/replication/executions", "replicate", json={"policy_id": policy}
        )
        return str(_location_id(started, "replicate"))

    async def status(self, ref: str) -> PullStatus:
        if not ref.isdigit():
            raise SiteNotFound(SERVICE, "status", f"{ref!r} is not a replication execution id")
        path = f"/replication/executions/{ref}"
        execution = _json(await self._rest("GET", path, "status"), "status")
        tasks = await self._rest("GET", path + "/tasks", "status", params={"page_size": 100})
        with _reading("status"):
            state = _STATES.get(str(execution.get("status")), PullState.RUNNING)
            message = str(execution.get("status_text") or "")
            count = int(execution.get("total") or 0)
            in_progress = int(execution.get("in_progress") or 0)
        if state is PullState.SUCCEEDED and count == 0:
            state = PullState.FAILED
            message = "nothing was copied: the image is not in the upstream registry"
        done, total = await self._bytes(_json(tasks, "status"), state)
        if total:
            percent = 100.0 * (done or 0) / total
        elif count:
            percent = 100.0 * (count - in_progress) / count
        else:
            percent = 100.0 if state.finished else 0.0
        started, ended = _time(execution.get("start_time")), _time(execution.get("end_time"))
        return PullStatus(ref, state, done, total, round(percent, 2), message, started, ended)

    async def verify(self, image: ImageRef, progress: ProgressCallback | None = None) -> ImageInfo:
        with self._registry(self._url, self._credentials) as registry:
            manifest = await fetch_manifest(registry, image, "verify", absent=(404,))
            token = registry.auth.token
        if manifest is None:
            raise SiteNotFound(SERVICE, "verify", f"{image} is not at the site")
        if image.digest and image.digest != manifest.digest:
            raise DigestMismatch(SERVICE, "verify", f"{image}: the site has {manifest.digest}")
        await stream_blobs(
            self._client,
            self._url,
            image.name,
            manifest,
            token=token,
            credentials=self._credentials,
            progress=progress,
            service=SERVICE,
            operation="verify",
        )
        return _info(
            image, manifest, present=True, reference=self._reference(image, manifest.digest)
        )

    # -- REST ------------------------------------------------------------------------------
    async def _rest(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        ok: int | None = None,
    ) -> httpx.Response:
        """One REST call; a 2xx or the ``ok`` status is an answer, anything else raises."""
        url = f"{self._url}/api/v2.0{path}"
        try:
            response = await self._client.request(
                method, url, params=params, json=json, headers={"Accept": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise TransientSiteError(SERVICE, operation, f"timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise TransientSiteError(SERVICE, operation, f"unreachable: {exc!r}") from exc
        if response.is_success or response.status_code == ok:
            return response
        error = classify_status(response.status_code)
        raise error(SERVICE, operation, error_message(response), response.status_code)

    def _registry(self, url: str, credentials: Credentials | None) -> OneShotRegistry:
        return OneShotRegistry(url, credentials, self._timeout, service=SERVICE)

    def _reference(self, image: ImageRef, digest: str) -> str:
        """What the session service should run: this site's host, the tag, the digest."""
        return str(ImageRef(self._host, image.project, image.repository, image.tag, digest))

    async def _upstream_endpoint(self) -> tuple[int, str] | None:
        if self._upstream is None:
            query = {"q": f"name={self._upstream_name}"}
            response = await self._rest("GET", "/registries", "registries", params=query)
            with _reading("registries"):
                for registry in _json(response, "registries"):
                    if registry.get("name") == self._upstream_name:
                        self._upstream = (int(registry["id"]), str(registry["url"]).rstrip("/"))
        return self._upstream

    async def _policy(self, image: ImageRef, registry_id: int) -> int:
        """The id of this image's replication policy, created on first use."""
        name = f"worksteps-{image.name}-{image.tag}".replace("/", "-")
        body = {
            "name": name,
            "description": f"worksteps: copy {image.name}:{image.tag} into this site",
            "src_registry": {"id": registry_id},
            "filters": [
                {"type": "name", "value": image.name},
                {"type": "tag", "value": image.tag},
            ],
            "trigger": {"type": "manual"},
            "enabled": True,
            "override": True,
            "replicate_deletion": False,
        }
        for _ in range(2):  # a concurrent creation answers 409: look it up again
            found = await self._rest(
                "GET", "/replication/policies", "replicate", params={"name": name}
            )
            with _reading("replicate"):
                for policy in _json(found, "replicate"):
                    if policy.get("name") == name:
                        return int(policy["id"])
            created = await self._rest(
                "POST", "/replication/policies", "replicate", json=body, ok=409
            )
            if created.status_code != 409:
                return _location_id(created, "replicate")
        raise PermanentSiteError(SERVICE, "replicate", f"policy {name} conflicts but is not listed")

    # -- progress over OCI -----------------------------------------------------------------
    async def _upstream_manifest(self, image: ImageRef, reuse: bool = False) -> Manifest | None:
        """The upstream manifest of ``image``; None when Harbor has no such upstream.

        ``reuse`` accepts an earlier answer (progress of a running copy); inspection always
        asks again, since an upstream tag may have moved.
        """
        key = f"{image.name}:{image.reference}"
        if reuse and key in self._manifests:
            return self._manifests[key]
        upstream = await self._upstream_endpoint()
        if upstream is None:
            return None
        # Harbor answers 401 both for a repository that does not exist and for one these
        # credentials may not read; either way the image cannot be copied from there.
        with self._registry(upstream[1], self._upstream_credentials) as registry:
            manifest = await fetch_manifest(registry, image, "inspect", absent=(401, 403, 404))
        if manifest is None:
            raise SiteNotFound(
                SERVICE, "inspect", f"{image.name}:{image.reference} is neither here nor upstream"
            )
        if len(self._manifests) > 256:
            self._manifests.clear()
        self._manifests[key] = manifest
        return manifest

    async def _bytes(
        self, tasks: list[dict[str, Any]], state: PullState
    ) -> tuple[int | None, int | None]:
        """Bytes landed at the site over bytes to copy, for all tasks; None if unknowable."""
        done = total = 0
        try:
            for task in tasks:
                source = ImageRef.parse(_resource_image(task["src_resource"]))
                target = ImageRef.parse(_resource_image(task["dst_resource"]))
                manifest = await self._upstream_manifest(source, reuse=True)
                if manifest is None:
                    return None, None
                total += manifest.blobs_size
                if state is PullState.SUCCEEDED or task.get("status") == "Succeed":
                    done += manifest.blobs_size
                else:
                    done += await self._landed(target, manifest)
        except (SiteError, ValueError, KeyError, TypeError):
            return None, None  # progress is best effort; the state above is the fact
        return done, total

    async def _landed(self, target: ImageRef, manifest: Manifest) -> int:
        """Bytes of ``manifest``'s blobs that the site registry already has for ``target``."""

        def probe() -> int:
            with self._registry(self._url, self._credentials) as registry:
                return landed_bytes(registry, target.name, manifest)

        return await in_thread(SERVICE, "status", probe)


def _info(
    image: ImageRef, manifest: Manifest, *, present: bool, reference: str | None = None
) -> ImageInfo:
    return ImageInfo(
        image,
        present=present,
        digest=manifest.digest,
        size=manifest.length + manifest.blobs_size,
        layers_size=manifest.blobs_size,
        media_type=manifest.media_type,
        reference=reference,
    )


@contextmanager
def _reading(operation: str) -> Iterator[None]:
    """Harbor answered, but not in the shape its API promises."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PermanentSiteError(SERVICE, operation, f"unexpected answer: {exc!r}") from exc


def _json(response: httpx.Response, operation: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise PermanentSiteError(SERVICE, operation, f"not JSON: {response.text[:200]!r}") from exc


def _time(text: object) -> datetime | None:
    """Harbor's times; its unset value is Go's zero time."""
    if not isinstance(text, str) or text.startswith("0001-01-01"):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _location_id(response: httpx.Response, operation: str) -> int:
    """Harbor answers a creation with 201 and the new resource's path in ``Location``."""
    location = response.headers.get("location", "")
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise PermanentSiteError(SERVICE, operation, f"no resource id in Location {location!r}")
    return int(tail)


def _repo(image: ImageRef) -> str:
    """Harbor wants a repository path with ``/`` encoded twice."""
    return quote(quote(image.repository, safe=""), safe="")


def _resource_image(resource: str) -> str:
    """Harbor's task resource ``project/repo:[tag1,tag2]`` -> ``project/repo:tag1``."""
    name, _, tags = resource.rpartition(":")
    tag = tags.strip("[]").split(",")[0]
    return f"{name}:{tag}" if tag else name
