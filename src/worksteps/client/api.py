"""``WorkstepsClient``: the user API of the Science Gateway (``/api``), over httpx.

Every method returns the JSON the gateway answered; a problem document (RFC 9457) becomes a
:class:`ClientError` whose message is the problem's detail and its field errors, ready to
show to a person.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

__all__ = ["ClientError", "WorkstepsClient"]

CREATION_MODES = ("empty", "data", "template", "discovery", "history", "provenance")
FINAL_PHASES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "EXPIRED", "REJECTED"})


class ClientError(Exception):
    """The gateway refused or failed: ``status``, the ``problem`` document, a readable text."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        lines = [detail]
        for error in problem.get("errors") or []:
            if isinstance(error, dict):
                lines.append(f"  {error.get('field', '?')}: {error.get('reason', '')}")
        super().__init__("\n".join(lines))

    @property
    def reason(self) -> str:
        return str(self.problem.get("reason") or "")


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:300] or response.reason_phrase}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)[:300]}
    raise ClientError(response.status_code, problem)


class WorkstepsClient:
    """A signed-in user's view of one gateway. Use as a context manager, or call close()."""

    def __init__(self, gateway: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.gateway = gateway.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=f"{self.gateway}/api", headers=headers, timeout=timeout)

    @property
    def authorization(self) -> dict[str, str]:
        """The header that carries this client's token (to call a site's broker directly)."""
        value = self._http.headers.get("Authorization")
        return {"Authorization": value} if value else {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WorkstepsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ClientError(504, {"detail": f"{self.gateway} did not answer in time"}) from None
        except httpx.TransportError as exc:
            raise ClientError(503, {"detail": f"cannot reach {self.gateway}: {exc}"}) from None
        _raise_for(response)
        return response.json() if response.content else None

    # -- worksteps -------------------------------------------------------------------------
    def worksteps(self) -> list[dict[str, Any]]:
        answer = self._call("GET", "/worksteps")
        items = answer.get("worksteps", answer) if isinstance(answer, dict) else answer
        return list(items)

    def workstep(self, uuid: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/worksteps/{uuid}")
        return result

    def versions(self, uuid: str) -> Any:
        return self._call("GET", f"/worksteps/{uuid}/versions")

    def request_of(self, uuid: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/worksteps/{uuid}/request")
        return result

    def templates(self) -> Any:
        return self._call("GET", "/templates")

    def create(self, mode: str = "empty", **fields: Any) -> dict[str, Any]:
        """Create a workstep: ``empty`` (name), ``data`` (references), ``template``
        (template), ``discovery``/``history``/``provenance`` (url)."""
        if mode not in CREATION_MODES:
            raise ValueError(f"unknown creation mode {mode!r}: one of {', '.join(CREATION_MODES)}")
        path = "/worksteps" if mode == "empty" else f"/worksteps/from-{mode}"
        body = {k: v for k, v in fields.items() if v is not None}
        result: dict[str, Any] = self._call("POST", path, json=body)
        return result

    def edit(self, uuid: str, part: str, value: Any, version: int) -> dict[str, Any]:
        """Replace one part (``executable``, ``compute``, ``data``, ``storage``) of version
        ``version``; a stale version is refused (409)."""
        if part not in ("executable", "compute", "data", "storage"):
            raise ValueError(f"cannot edit {part!r}: executable, compute, data or storage")
        body = {part: value, "version": version}
        result: dict[str, Any] = self._call("PUT", f"/worksteps/{uuid}/{part}", json=body)
        return result

    def add_data(self, uuid: str, references: list[str], version: int) -> dict[str, Any]:
        body = {"references": references, "version": version}
        result: dict[str, Any] = self._call("POST", f"/worksteps/{uuid}/data", json=body)
        return result

    def delete(self, uuid: str, version: int | None = None) -> None:
        headers = {"If-Match": f'"{version}"' if version is not None else "*"}
        self._call("DELETE", f"/worksteps/{uuid}", headers=headers)

    # -- executions ------------------------------------------------------------------------
    def execute(self, uuid: str, deadline: float | None = None) -> dict[str, Any]:
        """Send the workstep's current version to every site; the ranked offers come back."""
        workstep = self.workstep(uuid)
        body: dict[str, Any] = {
            "request": self.request_of(uuid),
            "workstep": {
                "uuid": workstep["uuid"],
                "version": workstep["version"],
                "name": workstep.get("name") or "",
            },
        }
        if deadline is not None:
            body["deadline"] = deadline
        result: dict[str, Any] = self._call("POST", "/executions", json=body)
        return result

    def executions(self) -> list[dict[str, Any]]:
        answer = self._call("GET", "/executions")
        return list(answer.get("executions", []))

    def execution(self, execution: str, wait: float | None = None) -> dict[str, Any]:
        params = {"wait": wait} if wait else None
        timeout = (wait or 0) + 30
        result: dict[str, Any] = self._call(
            "GET", f"/executions/{execution}", params=params, timeout=timeout
        )
        return result

    def select(self, execution: str, offer: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/executions/{execution}/select", json={"offer": offer}
        )
        return result

    def cancel(self, execution: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/executions/{execution}/cancel")
        return result

    def provenance(self, execution: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/executions/{execution}/provenance")
        return result

    def sites(self, check: bool = False) -> list[dict[str, Any]]:
        answer = self._call("GET", "/sites", params={"check": "true"} if check else None)
        return list(answer.get("sites", []))

    def events(self, execution: str, *, reconnects: int = 5) -> Iterator[dict[str, Any]]:
        """The execution's events as they happen, resuming after the last one seen when the
        stream breaks; ends after the session's final phase."""
        last: str | None = None
        failures = 0
        while True:
            headers = {"Last-Event-ID": last} if last else {}
            try:
                with connect_sse(
                    self._http,
                    "GET",
                    f"/executions/{execution}/events",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=None),
                ) as source:
                    if not source.response.is_success:
                        source.response.read()
                        _raise_for(source.response)
                    for sse in source.iter_sse():
                        if sse.id:
                            last = sse.id
                        if not sse.data:
                            continue
                        event: dict[str, Any] = sse.json()
                        failures = 0
                        yield event
                        if event.get("type") == "phase" and event.get("phase") in FINAL_PHASES:
                            return
                failures += 1  # the stream ended before the final phase: resume it
            except (httpx.TransportError, SSEError):
                failures += 1
            if failures > reconnects:
                raise ClientError(
                    503, {"detail": f"the event stream of {execution} keeps breaking"}
                )
            time.sleep(min(0.2 * 2**failures, 5.0))
