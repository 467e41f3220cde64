"""schemathesis against the Workstep Editor and the execution service as each runs on its own
(``worksteps serve editor|execution``): the same routers as in the gateway, behind the core's
bearer-token check instead of the gateway's, with their own documents."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from fuzz_support import Fuzz, Operation, load

from worksteps.federation import Federation

EXAMPLES = 10


def _tokens(federation: Federation) -> Callable[[Operation], dict[str, str]]:
    token = federation.issuer.mint("fuzzer")
    strangers = itertools.count()

    def headers(operation: Operation) -> dict[str, str]:
        if operation.label == "POST /executions":  # a user each, or the rate limit answers
            token_now = federation.issuer.mint(f"fuzzer-{next(strangers)}")
            return {"Authorization": f"Bearer {token_now}"}
        return {"Authorization": f"Bearer {token}"}

    return headers


def test_fuzz_the_editor(editor: str, federation: Federation) -> None:
    schema = load(editor)
    failures = Fuzz(schema, EXAMPLES, _tokens(federation)).run()
    assert not failures, "\n\n".join(failures)


def test_fuzz_the_execution_service(execution: str, federation: Federation) -> None:
    schema = load(execution, ("/executions", "request"))
    failures = Fuzz(schema, EXAMPLES, _tokens(federation)).run()
    assert not failures, "\n\n".join(failures)
