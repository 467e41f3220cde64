"""``worksteps up`` as a person runs it: one command, every address in federation.json, and
Ctrl-C stops everything, the sessions' processes included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from worksteps.core.serving import free_port
from worksteps.emulators.oidc import LocalIssuer


def _wait_for(path: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "worksteps up exited early"
        assert time.monotonic() < deadline, "worksteps up did not start"
        time.sleep(0.2)


def _a_notebook(api: httpx.Client) -> str:
    """Alice's JupyterLab, started through the gateway: its access link."""
    made = api.post("/worksteps/from-template", json={"template": "jupyterlab"}).json()
    request = api.get(f"/worksteps/{made['uuid']}/request").json()
    execution = api.post("/executions", json={"request": request}).json()
    best = min(execution["offers"], key=lambda o: o["rank"])
    api.post(f"/executions/{execution['id']}/select", json={"offer": best["offer"]})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = api.get(f"/executions/{execution['id']}", params={"wait": 5}).json()
        link = (found.get("session") or {}).get("access")
        if link:
            return str(link)
    raise AssertionError(f"no access link: {found}")


def test_up_runs_the_federation_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worksteps.cli.main",
            "up",
            "--data-dir",
            str(data),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(data / "federation.json", process)
        described = json.loads((data / "federation.json").read_text())
        gateway = described["services"]["gateway"]
        assert gateway == f"http://127.0.0.1:{port}"
        assert set(described["sites"]) == {"site-a", "site-b", "site-c"}
        # the same key signs as the running issuer, so a token can be minted here
        issuer = LocalIssuer(described["services"]["issuer"], key_file=data / "issuer-key.json")
        with httpx.Client(
            base_url=f"{gateway}/api",
            headers={"Authorization": f"Bearer {issuer.mint('alice')}"},
            timeout=60,
        ) as api:
            link = _a_notebook(api)
        assert httpx.get(link, follow_redirects=True, timeout=30).status_code == 200
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
        assert process.returncode == 0, output
        assert "Stopped." in output
        with pytest.raises(httpx.TransportError):
            httpx.get(link, timeout=5)  # the JupyterLab is gone with the federation
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{gateway}/healthz", timeout=5)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
