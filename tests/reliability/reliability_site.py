"""The emulated site the reliability tests prepare sessions at, and a client of its broker.

Each session ``i`` has data and an image of its own, so that every external submission can be
counted per session at the emulators: the Rucio file ``demo:rel-iii.fits`` (held only at the
remote storage element, so it is really staged; a second rule for the same file would find
the replica already at the site) and the image ``jobs/job-iii:1.0`` (only in the upstream
registry, so the site's Harbor really replicates it). Sessions are headless jobs that list
the user's home and end, so the broker prepares, runs and releases each one by itself.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from worksteps.broker.settings import BrokerSettings, EngineSettings
from worksteps.emulators.rig import (
    DEFAULT_IMAGES,
    DemoFile,
    RigImage,
    RunningEmulator,
    SiteRig,
    start_site_rig,
)
from worksteps.schema import kinds
from worksteps.site.services import SiteServicesSettings

__all__ = [
    "ACCEPT",
    "CORES",
    "EXPECTED",
    "FINAL",
    "JSON",
    "MEMORY",
    "SUBMISSIONS",
    "BrokerClient",
    "broker_settings",
    "calls",
    "file_name",
    "job_request",
    "messages",
    "replications",
    "start_site",
    "submissions",
    "unlike_undisturbed",
    "whole_site",
]

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
ACCEPT = {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "REJECTED", "EXPIRED"})
CORES, MEMORY = 64, 256
SIZE = 16 * 1024

EXPECTED = ["ACCEPTED", "WAITING", "PREPARING", "AVAILABLE", "RUNNING", "RELEASING", "COMPLETED"]
"""The phase history of a headless job, as an undisturbed broker writes it."""

SUBMISSIONS: Mapping[str, tuple[str, str, str]] = {
    "Rucio rule": ("rucio", "POST", r"^/rules/?$"),
    "Harbor replication": ("harbor", "POST", r"^/api/v2\.0/replication/executions$"),
    "Skaha session": ("skaha", "POST", r"^/skaha/v1/session$"),
    "Cavern transfer": ("cavern", "POST", r"^/cavern/transfers$"),
}
"""What each kind of external submission looks like at its emulator: (emulator, method, path)."""


def file_name(index: int) -> str:
    return f"rel-{index:03d}.fits"


def image_name(index: int) -> str:
    return f"jobs/job-{index:03d}"


def start_site(
    root: Path,
    sessions: int,
    *,
    sizes: Sequence[int] = (SIZE,),
    bandwidth: float = 256e3,
    extra_files: Iterable[DemoFile] = (),
    start_latency: float = 0.5,
) -> SiteRig:
    """A site with a file and an image for each of ``sessions`` sessions; file ``i`` has
    ``sizes[i % len(sizes)]`` bytes, staged at ``bandwidth`` bytes/s."""
    files = [DemoFile(file_name(i), sizes[i % len(sizes)]) for i in range(sessions)]
    images = [
        *DEFAULT_IMAGES,
        *(RigImage(image_name(i), "1.0", ("headless",), cached=False) for i in range(sessions)),
    ]
    return start_site_rig(
        "rel",
        root,
        files=[*files, *extra_files],
        datasets=(),
        images=images,
        bandwidth=bandwidth,
        storage_bandwidth=4 * bandwidth,
        image_pull_rate=40e3,
        start_latency=start_latency,
        terminating_seconds=0.2,
    )


def broker_settings(
    rig: SiteRig,
    database_url: str,
    *,
    services: SiteServicesSettings | None = None,
    service_timeout: int = 2,
    **engine: Any,
) -> BrokerSettings:
    """A broker for ``rig`` (reaching its ``services``, the rig's own by default): 64 cores,
    quick polling and retries, each site call bounded by ``service_timeout`` seconds in its
    client and by the engine's ``call_timeout`` (3 s) in all."""
    services = services or rig.services_settings
    timeouts = {"timeout": service_timeout}
    services = services.model_copy(
        update={
            name: getattr(services, name).model_copy(update=timeouts)
            for name in ("skaha", "rucio", "cavern", "harbor")
        }
    )
    tuned: dict[str, Any] = {
        "poll_min": 0.05,
        "poll_max": 0.5,
        "monitor_interval": 0.3,
        "retry_base": 0.1,
        "retry_max": 1.0,
        "call_timeout": 3.0,
        "lease": timedelta(seconds=6),
        **engine,
    }
    return BrokerSettings(
        site="rel",
        database_url=database_url,
        preparation=timedelta(seconds=1),
        capacity={"cores": CORES, "memory": MEMORY, "storage": 1000},
        services=services,
        engine=EngineSettings(**tuned),
    )


def _registry(rig: SiteRig) -> str:
    return rig.harbor.url.removeprefix("http://")


def job_request(
    rig: SiteRig,
    index: int | None,
    *,
    cores: int = 1,
    data: Sequence[dict[str, Any]] | None = None,
    image: str | None = None,
    duration: str = "PT10M",
) -> dict[str, Any]:
    """A headless job with session ``index``'s file and image (or the ``data`` and ``image``
    given), starting within five minutes."""
    if data is None:
        assert index is not None
        name = file_name(index)
        data = [
            {
                "kind": kinds.DATA_RUCIO,
                "meta": {"name": name},
                "rucio": {"scope": "demo", "object": name},
            }
        ]
    if image is None:
        assert index is not None
        image = f"{_registry(rig)}/{image_name(index)}:1.0"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "executable": {
            "kind": kinds.EXEC_DOCKER,
            "meta": {"name": f"job-{index}"},
            "image": {"locations": [image]},
            "command": ["ls", "-lRL", "arc/home"],
        },
        "compute": {
            "kind": kinds.COMPUTE_SIMPLE,
            "cores": {"min": cores},
            "memory": {"min": cores},
        },
        "data": list(data),
        "schedule": {"requested": {"start": f"{now}/PT5M", "duration": duration}},
    }


def whole_site(rig: SiteRig) -> dict[str, Any]:
    """A request for all of the site's cores and memory, starting within five minutes."""
    doc = job_request(
        rig, None, cores=CORES, data=[], image=f"{_registry(rig)}/skaha/terminal:1.1.2"
    )
    doc["compute"]["memory"] = {"min": MEMORY}
    return doc


def calls(emulator: RunningEmulator) -> dict[str, int]:
    """The calls an emulator counted, by ``METHOD path`` (its ``/_emulator/calls``)."""
    answer = httpx.get(f"{emulator.url}/_emulator/calls", timeout=10)
    answer.raise_for_status()
    counted: dict[str, int] = answer.json()
    return counted


def submissions(rig: SiteRig) -> dict[str, int]:
    """How many of each kind of :data:`SUBMISSIONS` the emulators received."""
    found = {}
    for label, (role, method, pattern) in SUBMISSIONS.items():
        counted = calls(rig.emulators[role])
        found[label] = sum(
            n
            for key, n in counted.items()
            if key.split(" ", 1)[0] == method and re.search(pattern, key.split(" ", 1)[1])
        )
    return found


@dataclass
class BrokerClient:
    """Speaks to one broker over HTTP, riding out the moments when it is down."""

    url: str
    timeout: float = 30.0

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=self.timeout)

    def offer(self, doc: dict[str, Any]) -> dict[str, Any]:
        with self._client() as client:
            answer = client.post("/requests", json=doc, headers=JSON)
        assert answer.status_code == 303, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def accept(self, uuid: str) -> httpx.Response:
        with self._client() as client:
            return client.post(f"/sessions/{uuid}", json=ACCEPT, headers=JSON)

    def update(self, uuid: str, phase: str) -> httpx.Response:
        change = {"kind": "uri:enum-value-update", "path": "phase", "value": phase}
        with self._client() as client:
            return client.post(f"/sessions/{uuid}", json=change, headers=JSON)

    def open(self, doc: dict[str, Any]) -> str:
        """Ask for offers and accept the first; the session's uuid."""
        offerset = self.offer(doc)
        assert offerset["result"] == "YES", offerset
        uuid: str = offerset["offers"][0]["meta"]["uuid"]
        answer = self.accept(uuid)
        assert answer.status_code == 200, answer.text
        return uuid

    def session(self, uuid: str) -> dict[str, Any]:
        with self._client() as client:
            answer = client.get(f"/sessions/{uuid}", headers=JSON)
        assert answer.status_code == 200, answer.text
        doc: dict[str, Any] = answer.json()
        return doc

    def sessions(
        self,
        uuids: Iterable[str],
        until: frozenset[str] = FINAL,
        timeout: float = 120.0,
        give_up_on: frozenset[str] = frozenset(),
    ) -> dict[str, dict[str, Any]]:
        """Each session's document once it is in one of the ``until`` phases (or when
        ``timeout`` has passed, or as soon as one is in a ``give_up_on`` phase: then as last
        seen). A broker that is down is waited for."""
        docs: dict[str, dict[str, Any]] = {}
        left = list(uuids)
        deadline = time.monotonic() + timeout
        with self._client() as client:
            while True:
                for uuid in list(left):
                    try:
                        answer = client.get(f"/sessions/{uuid}", headers=JSON)
                    except httpx.TransportError:
                        break
                    if answer.status_code != 200:
                        break  # a broker starting up
                    docs[uuid] = answer.json()
                    if docs[uuid]["phase"] in until:
                        left.remove(uuid)
                    if docs[uuid]["phase"] in give_up_on:
                        return docs
                if not left or time.monotonic() >= deadline:
                    return docs
                time.sleep(0.3)

    def events(self, uuid: str) -> list[dict[str, Any]]:
        """The session's whole event log (it must have ended: the stream then ends too)."""
        seen: list[dict[str, Any]] = []
        with self._client() as client, client.stream("GET", f"/sessions/{uuid}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:]))
        return seen

    def phases(self, uuid: str) -> list[str]:
        return [e["phase"] for e in self.events(uuid) if e["type"] == "phase"]


def unlike_undisturbed(events: Sequence[Mapping[str, Any]]) -> str | None:
    """What in a finished headless session's event log differs from an undisturbed run:
    another phase history, or a step submitted more than once (None: nothing)."""
    phases = [e["phase"] for e in events if e["type"] == "phase"]
    if phases != EXPECTED:
        return f"phases {phases}"
    submitted = Counter(
        e["step"] for e in events if e["type"] == "step" and e.get("state") == "SUBMITTED"
    )
    if again := sorted(k for k, n in submitted.items() if n > 1):
        return f"steps submitted more than once: {again}"
    return None


def replications(rig: SiteRig) -> dict[str, int]:
    """Harbor replication executions per replication policy (one policy per image)."""
    harbor = rig.services_settings.harbor
    auth = (harbor.username, harbor.password.get_secret_value())
    api = f"{rig.harbor.url}/api/v2.0/replication"
    found = {}
    with httpx.Client(auth=auth, timeout=10) as client:
        policies = client.get(f"{api}/policies", params={"page_size": 100}).json()
        for policy in policies:
            runs = client.get(f"{api}/executions", params={"policy_id": policy["id"]})
            found[str(policy["name"])] = len(runs.json())
    return found


def messages(doc: Mapping[str, Any]) -> str:
    """The session's messages as one text."""
    return " | ".join(str(m.get("message", "")) for m in doc.get("meta", {}).get("messages", []))
