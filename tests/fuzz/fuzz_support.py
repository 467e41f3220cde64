"""Running schemathesis over one service's OpenAPI document, from plain pytest tests.

Each operation is fuzzed with a bounded number of examples, schema-valid (positive) and
schema-invalid (negative), through schemathesis' public Python API (``APIOperation
.as_strategy`` under ``hypothesis.given``, then ``Case.call_and_validate``) against the live
loopback server. schemathesis' pytest loader (``from_fixture``) does not work with pytest 9,
so the operations are iterated here and every failure of every operation is reported at once.

Checks: all of schemathesis' defaults (no 5xx, status codes, content types, headers and
bodies conforming to the document, invalid data rejected) except ``positive_data_acceptance``:
a schema-valid request may still be refused for what it means (an unknown identifier: 404; a
stale version: 409; no version: 428; a data reference that is not one: 422), and those are
problem documents the document describes.

tests/fuzz/conftest.py starts the services; pytest puts this folder on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation, BaseSchema

from worksteps.schema.documents import ExecutionRequest

__all__ = ["Fuzz", "Operation", "load", "operations", "with_execution_requests"]

Operation = APIOperation[Any, Any, Any, Any]
Headers = Callable[[Operation], dict[str, str]]
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@dataclass
class Fuzz:
    """Fuzz every operation of ``schema``; :meth:`run` returns what failed, readably."""

    schema: BaseSchema
    examples: int
    headers: Headers = lambda operation: {}
    failures: list[str] = field(default_factory=list)
    calls: int = 0

    def run(
        self, path_parameters: Mapping[str, Callable[[], dict[str, Any]]] | None = None
    ) -> list[str]:
        """Every operation, positive and negative. ``path_parameters``: for the operations
        whose label is a key, fixed path parameters (real objects) made fresh for each."""
        for operation in operations(self.schema):
            fixed: dict[str, Any] | None = None
            if path_parameters is not None:
                if operation.label not in path_parameters:
                    continue
                fixed = path_parameters[operation.label]()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                self._operation(operation, mode, fixed)
        return self.failures

    def _operation(
        self, operation: Operation, mode: GenerationMode, fixed: dict[str, Any] | None
    ) -> None:
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

        @given(case=strategy)
        @settings(
            max_examples=self.examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            self.calls += 1
            case.call_and_validate(
                headers=self.headers(operation), excluded_checks=EXCLUDED, timeout=30
            )

        try:
            run()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                self.failures.append(f"{operation.label}: no request could be generated")
            # negative: nothing in the operation can be made invalid (no parameters, no body)
        except (Exception, BaseExceptionGroup) as exc:
            self.failures.append(f"{operation.label} [{mode.value}]:\n{exc}")


def operations(schema: BaseSchema) -> list[Operation]:
    """Every operation of the document (an unreadable one fails the test)."""
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the document has an invalid operation: {result.err()}")
        found.append(result.ok())
    return found


def load(
    base_url: str, *bodies: tuple[str, str | None], path_regex: str | None = None
) -> BaseSchema:
    """The OpenAPI document a service serves, its ExecutionRequest bodies described."""
    document = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    with_execution_requests(document, *bodies)
    schema: BaseSchema = schemathesis.openapi.from_dict(document)
    if path_regex is not None:
        schema = schema.include(path_regex=path_regex)
    schema.config.update(base_url=base_url)
    return schema


def with_execution_requests(document: dict[str, Any], *bodies: tuple[str, str | None]) -> None:
    """Describe the IVOA ExecutionRequest in ``document`` where an operation takes one:
    ``(path, None)`` for a whole POST body, ``(path, property)`` for one property of it.

    The services read these bodies themselves (JSON, YAML or XML), so their documents say
    only "an object" or nothing; described, the fuzzer sends real requests, not just junk.
    """
    schema = ExecutionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["ExecutionRequest"] = schema
    reference = {"$ref": "#/components/schemas/ExecutionRequest"}
    for path, prop in bodies:
        operation = document["paths"][path]["post"]
        if prop is None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": reference}},
            }
        else:
            content = operation["requestBody"]["content"]["application/json"]
            content["schema"]["properties"][prop] = reference
