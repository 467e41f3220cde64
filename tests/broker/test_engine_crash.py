"""A broker killed with SIGKILL at random moments during preparation, and restarted, finishes
every session, and no external operation is submitted twice (counted at the emulators)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr
from test_engine import _headless, _rucio

from worksteps.core.serving import free_port
from worksteps.emulators.rig import SiteRig, start_site_rig

SESSIONS = 3
KILLS = 4


def _plain(value: Any) -> Any:
    """Settings as plain YAML values, secrets included (it is the broker's own config file)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


@pytest.fixture
def slow_rig(tmp_path: Path) -> Iterator[SiteRig]:
    site = start_site_rig(
        "crash", tmp_path / "site", bandwidth=400e3, storage_bandwidth=600e3, start_latency=1.0
    )
    try:
        yield site
    finally:
        site.stop()


class BrokerProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "worksteps.cli.main",
                    "serve",
                    "broker",
                    "--port",
                    str(self.port),
                    "--config",
                    str(self.config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/docs", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(self.log.read_text()[-3000:])

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


def test_sigkill_at_random_moments_loses_nothing_and_submits_once(
    slow_rig: SiteRig, tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "broker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": "crash",
                "database_url": database_url,
                "preparation": "PT1S",
                "services": _plain(slow_rig.services_settings.model_dump()),
                "engine": {
                    "poll_min": 0.05,
                    "poll_max": 0.5,
                    "monitor_interval": 0.3,
                    "lease": "PT3S",
                    "call_timeout": 2.0,
                    "retry_base": 0.05,
                    "retry_max": 0.5,
                },
            }
        )
    )
    broker = BrokerProcess(config, free_port(), tmp_path / "broker.log")
    broker.start()
    try:
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            uuids = []
            for i in range(SESSIONS):
                name = "cube-0003.fits" if i % 2 else "obs-0002.fits"
                doc = _headless(slow_rig, _rucio(name), duration="PT10M")
                offered = client.post("/requests", json=doc, headers={"Accept": "application/json"})
                uuid = offered.json()["offers"][0]["meta"]["uuid"]
                change = {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}
                assert client.post(f"/sessions/{uuid}", json=change).status_code == 200
                uuids.append(uuid)
        rng = random.Random(int(os.environ.get("WORKSTEPS_CRASH_SEED", "7")))
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.1, 1.5))
            broker.kill()
            broker.start()
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            docs: dict[str, Any] = {}
            while time.monotonic() < deadline:
                docs = {
                    u: client.get(f"/sessions/{u}", headers={"Accept": "application/json"}).json()
                    for u in uuids
                }
                if all(d["phase"] in ("COMPLETED", "FAILED") for d in docs.values()):
                    break
                time.sleep(0.3)
        why = [m.get("message") for d in docs.values() for m in d["meta"].get("messages", [])]
        assert {d["phase"] for d in docs.values()} == {"COMPLETED"}, why
    finally:
        broker.stop()
    # Nothing was submitted twice: one Skaha session and one Rucio rule per broker session
    # (no faults were injected, so every call counted is a submission that succeeded).
    assert slow_rig.skaha.app.count("POST", r"^/skaha/v1/session$") == SESSIONS
    assert slow_rig.rucio.app.count("POST", r"^/rules/?$") == SESSIONS
