"""The real canfar client, through SkahaSessions, against the Skaha emulator over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopback_support import Loopback
from worksteps.core.serving import ServedApp, free_port
from worksteps.emulators.faults import FaultRule
from worksteps.emulators.skaha import SkahaConfig, create_app
from worksteps.site.errors import PermanentSiteError, SiteNotFound, TransientSiteError
from worksteps.site.sessions import (
    SessionInfo,
    SessionKind,
    SessionService,
    SessionSpec,
    SessionStatus,
)
from worksteps.site.skaha import SkahaSessions

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
CARTA = "images.canfar.net/skaha/carta:4.1"
NOTEBOOK = "images.canfar.net/skaha/astroml:latest"


@pytest.fixture
def serve(tmp_path: Path, loopback: Loopback) -> Callable[..., ServedApp]:
    serial = itertools.count()

    def start(faults: list[FaultRule] | None = None, **overrides: Any) -> ServedApp:
        settings: dict[str, Any] = {
            "data_root": tmp_path / f"site{next(serial)}",
            "start_latency": 0.05,
            "terminating_seconds": 0.2,
        }
        settings.update(overrides)
        return loopback(create_app(SkahaConfig(**settings), faults=faults))

    return start


@pytest.fixture
async def sessions(serve: Callable[..., ServedApp]) -> AsyncIterator[SkahaSessions]:
    served = serve()
    async with SkahaSessions(served.url + "/skaha/v1", "alice") as adapter:
        yield adapter


async def wait_for(
    adapter: SkahaSessions, session_id: str, status: SessionStatus, limit: float = 20
) -> SessionInfo:
    deadline = time.monotonic() + limit
    while True:
        info = await adapter.get(session_id)
        if info.status is status:
            return info
        assert info.status in {SessionStatus.PENDING, SessionStatus.RUNNING}, info
        assert time.monotonic() < deadline, f"still {info.status}"
        await asyncio.sleep(0.1)


def test_the_adapter_is_a_session_service() -> None:
    assert isinstance(SkahaSessions("http://127.0.0.1:1/skaha/v1", "t"), SessionService)


async def test_headless_launch_get_logs_find_delete(sessions: SkahaSessions) -> None:
    spec = SessionSpec(
        name="Echo-Job",
        kind=SessionKind.HEADLESS,
        image=TERMINAL,
        cores=1,
        ram=2,
        cmd="echo",
        args=("hello", "skaha"),
        env={"MODE": "test"},
    )
    session_id = await sessions.launch(spec)
    info = await wait_for(sessions, session_id, SessionStatus.COMPLETED)
    assert (info.session_id, info.name, info.kind, info.image) == (
        session_id,
        "echo-job",
        SessionKind.HEADLESS,
        TERMINAL,
    )
    assert info.connect_url is None
    assert info.start_time is not None and info.expiry_time is not None
    assert info.start_time <= datetime.now(UTC) < info.expiry_time
    assert await sessions.logs(session_id) == "hello skaha\n"

    (found,) = await sessions.find("echo-JOB")
    assert found.session_id == session_id
    assert await sessions.find("other") == []

    await sessions.delete(session_id)
    await asyncio.sleep(0.4)
    with pytest.raises(SiteNotFound):
        await sessions.get(session_id)


async def test_pending_session_reports_the_latest_event(serve: Callable[..., ServedApp]) -> None:
    served = serve(start_latency=1.5)
    async with SkahaSessions(served.url + "/skaha/v1", "alice") as adapter:
        session_id = await adapter.launch(SessionSpec("viewer", SessionKind.CARTA, CARTA))
        pending = await adapter.get(session_id)
        assert pending.status is SessionStatus.PENDING
        assert pending.start_time is None and pending.expiry_time is None
        assert pending.message == f'Pulling: Pulling image "{CARTA}"'
        running = await wait_for(adapter, session_id, SessionStatus.RUNNING)
        assert running.message is None
        assert running.connect_url == f"{served.url}/session/carta/{session_id}/"
        async with httpx.AsyncClient() as browser:
            assert (await browser.get(running.connect_url)).status_code == 200


async def test_failed_session_says_why(sessions: SkahaSessions) -> None:
    spec = SessionSpec("broken", SessionKind.HEADLESS, TERMINAL, cmd="false")
    session_id = await sessions.launch(spec)
    failed = await wait_for(sessions, session_id, SessionStatus.FAILED)
    assert failed.message is not None and failed.message.startswith("BackoffLimitExceeded:")


async def test_renew_moves_the_expiry(serve: Callable[..., ServedApp]) -> None:
    served = serve(session_lifetime=100.0)
    async with SkahaSessions(served.url + "/skaha/v1", "alice") as adapter:
        session_id = await adapter.launch(SessionSpec("viewer", SessionKind.CARTA, CARTA))
        before = (await wait_for(adapter, session_id, SessionStatus.RUNNING)).expiry_time
        assert before is not None
        await asyncio.sleep(1.1)
        renewed = await adapter.renew(session_id)
        assert renewed is not None and renewed > before
        assert (await adapter.get(session_id)).expiry_time == renewed


async def test_refusals_are_permanent_with_the_sites_message(
    serve: Callable[..., ServedApp],
) -> None:
    served = serve(max_user_sessions=1)
    async with SkahaSessions(served.url + "/skaha/v1", "alice") as adapter:
        await adapter.launch(SessionSpec("first", SessionKind.CARTA, CARTA))
        with pytest.raises(PermanentSiteError) as quota:
            await adapter.launch(SessionSpec("second", SessionKind.CARTA, CARTA))
        assert quota.value.status == 400
        assert quota.value.message == "User alice has reached the maximum of 1 active sessions."
        assert not isinstance(quota.value, SiteNotFound)

        with pytest.raises(PermanentSiteError) as untrusted:
            await adapter.launch(
                SessionSpec("x", SessionKind.HEADLESS, "docker.io/a/b:1", cmd="ls")
            )
        assert "must come from one of [images.canfar.net]" in untrusted.value.message

        with pytest.raises(PermanentSiteError, match="Invalid value for 'cores': 200"):
            await adapter.launch(SessionSpec("big", SessionKind.HEADLESS, TERMINAL, cores=200))

        with pytest.raises(PermanentSiteError, match="refused by the client"):
            await adapter.launch(SessionSpec("deep", SessionKind.HEADLESS, "a/b/c/d:1", cmd="ls"))

        with pytest.raises(SiteNotFound):
            await adapter.get("nothere1")
        with pytest.raises(SiteNotFound):
            await adapter.logs("nothere1")
        with pytest.raises(SiteNotFound):
            await adapter.delete("nothere1")
        with pytest.raises(PermanentSiteError) as renew:
            await adapter.renew("nothere1")
        assert renew.value.message == "No active job for user alice with session nothere1"

    with pytest.raises(ValueError, match="token"):
        SkahaSessions(served.url + "/skaha/v1", "")


async def test_outages_are_transient(serve: Callable[..., ServedApp]) -> None:
    served = serve(faults=[FaultRule(method="POST", path="/skaha/v1/session$", error_rate=1.0)])
    async with SkahaSessions(served.url + "/skaha/v1", "alice") as adapter:
        with pytest.raises(TransientSiteError) as busy:
            await adapter.launch(SessionSpec("busy", SessionKind.CARTA, CARTA))
        assert busy.value.status == 503
        assert await adapter.find("busy") == []  # nothing was created

    refused_url = f"http://127.0.0.1:{free_port()}/skaha/v1"
    async with SkahaSessions(refused_url, "alice", timeout=2) as adapter:
        with pytest.raises(TransientSiteError) as down:
            await adapter.get("whatever")
        assert down.value.status is None
        with pytest.raises(TransientSiteError):
            await adapter.find("whatever")


def test_specs_refuse_what_skaha_cannot_express() -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        SessionSpec("no_underscores", SessionKind.CARTA, CARTA)
    with pytest.raises(ValueError, match="only for headless"):
        SessionSpec("nb", SessionKind.NOTEBOOK, NOTEBOOK, cmd="ls")
    with pytest.raises(ValueError, match="splits args on spaces"):
        SessionSpec("job", SessionKind.HEADLESS, TERMINAL, cmd="echo", args=("two words",))
    with pytest.raises(ValueError, match="drops"):
        SessionSpec("job", SessionKind.HEADLESS, TERMINAL, cmd="env", env={"A": "b=c"})
    spec = SessionSpec("job", "headless", TERMINAL, cmd="env", env={"A": "b"})  # type: ignore[arg-type]
    assert spec.kind is SessionKind.HEADLESS and dict(spec.env) == {"A": "b"}
    assert hash(spec) == hash(SessionSpec("job", SessionKind.HEADLESS, TERMINAL, cmd="env"))


def _processes_holding(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_notebook_is_a_real_jupyterlab_until_deleted(
    serve: Callable[..., ServedApp],
) -> None:
    served = serve(start_latency=0.0)
    async with SkahaSessions(served.url + "/skaha/v1", "alice") as adapter:
        session_id = await adapter.launch(SessionSpec("lab", SessionKind.NOTEBOOK, NOTEBOOK))
        info = await wait_for(adapter, session_id, SessionStatus.RUNNING, limit=90)
        assert info.connect_url is not None
        assert info.connect_url.endswith(
            f"/session/notebook/{session_id}/lab/tree/arc/home/alice?token={session_id}"
        )
        async with httpx.AsyncClient(timeout=10) as browser:
            page = await browser.get(info.connect_url)
            assert page.status_code == 200
            assert "JupyterLab" in page.text
        async with httpx.AsyncClient(timeout=10) as stranger:  # no login cookie either
            tokenless = await stranger.get(info.connect_url.split("?")[0])
            assert tokenless.status_code != 200  # the token is the credential
        token_option = f"--IdentityProvider.token={session_id}"
        assert _processes_holding(token_option)

        await adapter.delete(session_id)
        assert _processes_holding(token_option) == []
        async with httpx.AsyncClient(timeout=2) as browser:
            with pytest.raises(httpx.ConnectError):
                await browser.get(info.connect_url)
