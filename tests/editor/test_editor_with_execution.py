"""History and provenance from the real Workstep Execution service: a workstep is executed at
a (booking-only) broker and cancelled, then re-created from its execution and from the
provenance record the execution service wrote."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from editor_support import Editor, user

from worksteps.broker.api.app import create_app as create_broker
from worksteps.broker.settings import BrokerSettings
from worksteps.core.serving import ServedApp, free_port, start_in_thread
from worksteps.editor.api import create_app as create_editor
from worksteps.editor.settings import FetchSettings
from worksteps.execution.api import create_app as create_execution
from worksteps.execution.registry import Site
from worksteps.execution.settings import ExecutionSettings

CONTENT = ("name", "executable", "compute", "storage", "data", "schedule")


@dataclass
class Federation:
    editor: str
    execution: str


@pytest.fixture(scope="module")
def federation(editor: Editor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """A broker, an execution service in front of it, and an editor that trusts the service
    (on the module's database); each knows the other's URL before either starts."""
    base = tmp_path_factory.mktemp("federation")
    editor_url = f"http://127.0.0.1:{free_port()}"
    execution_port = free_port()
    execution_url = f"http://127.0.0.1:{execution_port}"
    servers: list[ServedApp] = []
    try:
        broker = start_in_thread(
            create_broker(BrokerSettings(site="site-x", database_url=f"sqlite:///{base}/b.sqlite"))
        )
        servers.append(broker)
        execution = ExecutionSettings(
            database_url=f"sqlite:///{base}/e.sqlite",
            sites=[Site(name="site-x", url=broker.url)],
            auth=editor.settings.auth,
            editor_urls=[editor_url],
            health_interval=0,
        )
        servers.append(start_in_thread(create_execution(execution), port=execution_port))
        settings = editor.settings.model_copy(
            update={"fetch": FetchSettings(timeout=10, trusted_origins=[execution_url])}
        )
        servers.append(
            start_in_thread(create_editor(settings), port=int(editor_url.rsplit(":", 1)[1]))
        )
        yield Federation(editor_url, execution_url)
    finally:
        for server in reversed(servers):
            server.stop()


def _json(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_re_created_from_an_execution_and_its_provenance(
    editor: Editor, federation: Federation
) -> None:
    headers = editor.oidc.headers(user())
    with (
        httpx.Client(base_url=federation.editor, headers=headers, timeout=30) as ed,
        httpx.Client(base_url=federation.execution, headers=headers, timeout=30) as ex,
    ):
        workstep = _json(ed.post("/worksteps/from-template", json={"template": "carta"}), 201)
        url = workstep["links"]["self"]
        workstep = _json(
            ed.post(f"{url}/data", json={"version": 1, "references": ["demo:psf-0004.fits"]})
        )
        execution = _json(ex.post("/executions", json={"workstep_url": url}), 201)
        offer = execution["offers"][0]
        _json(ex.post(f"/executions/{execution['id']}/select", json={"offer": offer["offer"]}))
        ended = _json(ex.post(f"/executions/{execution['id']}/cancel"))
        assert ended["state"] == "ended"

        from_execution = _json(
            ed.post("/worksteps/from-history", json={"url": ended["links"]["self"]}), 201
        )
        assert from_execution["origin"]["detail"]["kind"] == "execution"
        for key in CONTENT:
            assert from_execution[key] == workstep[key], key

        from_record = _json(
            ed.post("/worksteps/from-provenance", json={"url": ended["links"]["provenance"]}),
            201,
        )
        detail = from_record["origin"]["detail"]
        assert (detail["site"], detail["phase"]) == ("site-x", "CANCELLED")
        for key in CONTENT:
            assert from_record[key] == workstep[key], key
