"""Data staging through the CANSRC PrepareData API, with httpx.

PrepareData replicates DIDs to the site's RSE and copies them into the user's storage
(``/cavern/home/<user>/<destination>``). The known wire format is small: ``POST /preparedata``
with ``[[did, source_path, destination], …]`` answers ``{"task_id"}``, and
``GET /preparedata/{task_id}`` answers ``{"status"}`` with Celery-like states. Anything more
(``progress``, ``destination``, ``error``) is read when present and never required.

``source_path`` is the replica's path on the RSE; this adapter derives it with Rucio's default
deterministic (``hash``) convention. PrepareData has neither a replica listing nor a cancel
call: :meth:`PrepareDataStaging.replicas` asks the ``replicas_from`` adapter (normally the
site's Rucio) and :meth:`PrepareDataStaging.cancel` returns ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from worksteps.site.errors import PermanentSiteError, SiteError, TransientSiteError, classify_status
from worksteps.site.staging import DID, DataStaging, Replica, StageRequest, StageState, StageStatus

__all__ = ["CELERY_STATES", "PrepareDataStaging", "rucio_path"]

SERVICE = "preparedata"

CELERY_STATES: Mapping[str, StageState] = {
    "PENDING": StageState.PENDING,
    "RECEIVED": StageState.PENDING,
    "RETRY": StageState.PENDING,
    "STARTED": StageState.ACTIVE,
    "PROGRESS": StageState.ACTIVE,
    "SUCCESS": StageState.DONE,
    "FAILURE": StageState.FAILED,
    "REVOKED": StageState.FAILED,
}


def rucio_path(did: DID) -> str:
    """The RSE-relative path of a replica under Rucio's deterministic ``hash`` convention."""
    digest = hashlib.md5(str(did).encode(), usedforsecurity=False).hexdigest()
    return f"{did.scope}/{digest[0:2]}/{digest[2:4]}/{did.name}"


class PrepareDataStaging:
    """:class:`~worksteps.site.staging.DataStaging` through a PrepareData gatekeeper."""

    def __init__(
        self,
        base_url: str,
        token: str | Callable[[], str],
        *,
        replicas_from: DataStaging | None = None,
        states: Mapping[str, StageState] = CELERY_STATES,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._replicas_from = replicas_from
        self._states = {key.upper(): value for key, value in states.items()}
        self._timeout = timeout
        self._client = client

    async def replicas(self, did: DID) -> list[Replica]:
        if self._replicas_from is None:
            raise PermanentSiteError(
                SERVICE, "replicas", "PrepareData cannot list replicas and no catalogue is set"
            )
        return await self._replicas_from.replicas(did)

    async def stage(self, request: StageRequest) -> str:
        body = [[str(did), rucio_path(did), request.destination] for did in request.dids]
        data = await self._request("stage", "POST", "/preparedata", json=body)
        task_id = data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise PermanentSiteError(SERVICE, "stage", f"no task_id in the answer: {data!r}")
        return task_id

    async def find(self, request: StageRequest) -> str | None:
        return None  # PrepareData has no search: its tasks cannot be looked up

    async def status(self, ref: str) -> StageStatus:
        data = await self._request("status", "GET", f"/preparedata/{ref}")
        raw = str(data.get("status", "")).upper()
        state = self._states.get(raw)
        reported = data.get("progress")
        progress: dict[str, Any] = reported if isinstance(reported, dict) else {}
        message = str(data.get("error") or "") or f"PrepareData task {raw}"
        if state is None:
            state, message = StageState.ACTIVE, f"PrepareData reports an unknown status {raw!r}"
        destination = data.get("destination")
        return StageStatus(
            state,
            _count(progress.get("bytes_done")),
            _count(progress.get("bytes_total")),
            message,
            destination if isinstance(destination, str) and state is StageState.DONE else None,
        )

    async def cancel(self, ref: str) -> bool:
        return False

    async def _request(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        token = self._token() if callable(self._token) else self._token
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        url = self.base_url + path
        try:
            if self._client is not None:
                response = await self._client.request(method, url, headers=headers, **kwargs)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise TransientSiteError(SERVICE, operation, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            error = classify_status(response.status_code)
            raise error(SERVICE, operation, _detail(response), response.status_code)
        try:
            data = response.json()
        except ValueError as exc:
            raise _protocol_error(operation, "the answer is not JSON") from exc
        if not isinstance(data, dict):
            raise _protocol_error(operation, "the answer is not a JSON object")
        return data


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value >= 0 else None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]


def _protocol_error(operation: str, message: str) -> SiteError:
    return PermanentSiteError(SERVICE, operation, message)
