"""Harbor REST replication endpoints: policies, executions (start, read, stop) and tasks.

``POST`` answers 201 with an empty body and the new resource in ``Location``, as Harbor does;
clients read the id from that header. All of these need a system administrator.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from worksteps.emulators.harbor.auth import Principal
from worksteps.emulators.harbor.replication import Execution, Policy, PolicyIn, Replication, Task
from worksteps.emulators.harbor.rest import PREFIX, RestApi
from worksteps.emulators.harbor.wire import error, iso

__all__ = ["replication_routes"]


class ReplicationApi:
    def __init__(self, rest: RestApi, replication: Replication) -> None:
        self.rest = rest
        self.replication = replication

    @property
    def _startup(self) -> float:
        return self.replication.startup

    async def _body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return error(400, "BAD_REQUEST", "the body is not valid JSON")
        if not isinstance(body, dict):
            return error(400, "BAD_REQUEST", "the body must be a JSON object")
        return body

    # -- policies --------------------------------------------------------------------------
    def _policy_json(self, policy: Policy) -> dict[str, Any]:
        body = policy.spec.model_dump()
        registries = {r["id"]: r for r in self.rest.registry_documents()}
        src = policy.spec.src_registry
        body["src_registry"] = registries.get(src.id) if src else None
        body["dest_registry"] = {"id": 0, "name": "Local", "type": "harbor", "url": ""}
        body.update(
            id=policy.id,
            deletion=policy.spec.replicate_deletion,
            creation_time=iso(policy.created),
            update_time=iso(policy.created),
        )
        return body

    async def policies(self, request: Request) -> Response:
        principal = self.rest.admin(request)
        if not isinstance(principal, Principal):
            return principal
        if request.method == "POST":
            return await self._create_policy(request)
        name = request.query_params.get("name")
        found = [
            self._policy_json(p)
            for p in self.replication.policies.values()
            if name is None or name in p.spec.name
        ]
        return self.rest.paged(request, found)

    async def _create_policy(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        try:
            spec = PolicyIn.model_validate(body)
        except ValidationError as exc:
            return error(400, "BAD_REQUEST", f"invalid policy: {exc.errors()[0]['msg']}")
        try:
            policy = self.replication.add_policy(spec)
        except KeyError:
            return error(409, "CONFLICT", f"policy {spec.name} already exists")
        except LookupError as exc:
            return error(400, "BAD_REQUEST", str(exc))
        location = f"{PREFIX}/replication/policies/{policy.id}"
        return Response(status_code=201, headers={"Location": location})

    async def policy(self, request: Request) -> Response:
        principal = self.rest.admin(request)
        if not isinstance(principal, Principal):
            return principal
        policy = self.replication.policies.get(request.path_params["id"])
        if policy is None:
            return error(404, "NOT_FOUND", "policy not found")
        if request.method == "DELETE":
            del self.replication.policies[policy.id]
            return Response(status_code=200)
        return JSONResponse(self._policy_json(policy))

    # -- executions ------------------------------------------------------------------------
    def _execution_json(self, execution: Execution) -> dict[str, Any]:
        now = self.replication.state.clock()
        status = execution.status(now, self._startup)
        if status == "Failed":
            failed = [t for t in execution.tasks if t.status(now, self._startup) == "Failed"]
            text = "; ".join(f"failed to copy {_resource(t)}: connection reset" for t in failed)
        elif not execution.tasks:
            text = "no resources need to be replicated"
        else:
            text = ""
        return {
            "id": execution.id,
            "policy_id": execution.policy_id,
            "status": status,
            "status_text": text,
            "trigger": "manual",
            "start_time": iso(execution.started),
            "end_time": iso(execution.end_time(now, self._startup)),
            **execution.counts(now, self._startup),
        }

    async def executions(self, request: Request) -> Response:
        principal = self.rest.admin(request)
        if not isinstance(principal, Principal):
            return principal
        if request.method == "POST":
            return await self._start(request)
        policy_id = request.query_params.get("policy_id")
        status = request.query_params.get("status")
        found = [
            self._execution_json(e)
            for e in sorted(self.replication.executions.values(), key=lambda e: -e.id)
            if policy_id is None or str(e.policy_id) == policy_id
        ]
        found = [e for e in found if status is None or e["status"] == status]
        return self.rest.paged(request, found)

    async def _start(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        policy_id = body.get("policy_id")
        if not isinstance(policy_id, int):
            return error(400, "BAD_REQUEST", "policy_id is required")
        policy = self.replication.policies.get(policy_id)
        if policy is None:
            return error(404, "NOT_FOUND", f"policy {policy_id} not found")
        if not policy.spec.enabled:
            return error(412, "PRECONDITION", f"policy {policy_id} is disabled")
        execution = self.replication.start(policy)
        location = f"{PREFIX}/replication/executions/{execution.id}"
        return Response(status_code=201, headers={"Location": location})

    async def execution(self, request: Request) -> Response:
        principal = self.rest.admin(request)
        if not isinstance(principal, Principal):
            return principal
        execution = self.replication.executions.get(request.path_params["id"])
        if execution is None:
            return error(404, "NOT_FOUND", "execution not found")
        if request.method == "PUT":
            self.replication.stop(execution)
            return Response(status_code=200)
        return JSONResponse(self._execution_json(execution))

    async def tasks(self, request: Request) -> Response:
        principal = self.rest.admin(request)
        if not isinstance(principal, Principal):
            return principal
        execution = self.replication.executions.get(request.path_params["id"])
        if execution is None:
            return error(404, "NOT_FOUND", "execution not found")
        now = self.replication.state.clock()
        wanted = request.query_params.get("status")
        found = [self._task_json(t, now) for t in execution.tasks]
        found = [t for t in found if wanted is None or t["status"] == wanted]
        return self.rest.paged(request, found)

    def _task_json(self, task: Task, now: float) -> dict[str, Any]:
        return {
            "id": task.id,
            "execution_id": task.execution_id,
            "status": task.status(now, self._startup),
            "job_id": f"{task.execution_id:08x}{task.id:016x}",
            "operation": "copy",
            "resource_type": "image",
            "src_resource": _resource(task),
            "dst_resource": f"{task.target.name}:[{task.target.tag}]",
            "start_time": iso(task.arrival.started),
            "end_time": iso(task.end_time(now, self._startup)),
        }


def _resource(task: Task) -> str:
    """Harbor names a replicated resource ``repository:[tag,...]``."""
    return f"{task.source.name}:[{task.source.tag}]"


def replication_routes(rest: RestApi, replication: Replication) -> list[BaseRoute]:
    api = ReplicationApi(rest, replication)
    base = PREFIX + "/replication"
    return [
        Route(base + "/policies", api.policies, methods=["GET", "POST"]),
        Route(base + "/policies/{id:int}", api.policy, methods=["GET", "DELETE"]),
        Route(base + "/executions", api.executions, methods=["GET", "POST"]),
        Route(base + "/executions/{id:int}", api.execution, methods=["GET", "PUT"]),
        Route(base + "/executions/{id:int}/tasks", api.tasks, methods=["GET"]),
    ]
