"""The crash scenario: SIGKILL the broker at random moments while it prepares many sessions.

One site of emulators (in this process), one broker (its own OS process) on the database
given. A client asks for and accepts ``sessions`` headless jobs, one after another, while a
killer thread SIGKILLs the broker ``kills`` times, each after a random ``alive`` interval, and
restarts it at once (a warm standby, see ``reliability_broker.py``); the client rides out the
moments the broker is down, and treats an answer lost in a crash as a client would (asks for
offers again; looks an acceptance up). Then every session must complete with the phase
history of an undisturbed one, its data must be in its area, and each submission that must
not be repeated (a Rucio rule, a Harbor replication, a Skaha session) must have reached the
emulators exactly once per session. Cavern transfers are at-least-once by design (they
cannot be looked up; a repeat rewrites the same file), so they are reported, not bounded.

Used by ``test_reliability_crash.py`` (small counts) and ``bench/reliability/crash.py``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from reliability_broker import BrokerProcess
from reliability_site import (
    BrokerClient,
    broker_settings,
    file_name,
    job_request,
    messages,
    replications,
    start_site,
    submissions,
    unlike_undisturbed,
)

__all__ = ["CrashRun", "run_crash"]

SIZES = (8 * 1024, 32 * 1024, 96 * 1024, 192 * 1024)
BANDWIDTH = 64e3  # bytes/s: staging takes 0.1 to 3 s, so kills land in every step


@dataclass
class CrashRun:
    engine: str
    sessions: int
    kills: int  # SIGKILLs done
    seconds: float = 0.0
    phases: Counter[str] = field(default_factory=Counter)
    wrong: dict[str, str] = field(default_factory=dict)  # uuid: what is wrong with it
    submitted: dict[str, int] = field(default_factory=dict)
    lost_answers: int = 0  # client calls whose answer a kill lost
    downtimes: list[float] = field(default_factory=list)  # s, each SIGKILL until serving
    settled: float = 0.0  # s from the last restart until every session had ended

    @property
    def repeated(self) -> dict[str, int]:
        """Submissions that reached the emulators other than once per session."""
        once = ("Rucio rule", "Harbor replication", "Skaha session")
        return {k: n for k, n in self.submitted.items() if k in once and n != self.sessions}

    @property
    def ok(self) -> bool:
        return not self.wrong and not self.repeated and self.phases["COMPLETED"] == self.sessions


class _Opener:
    """Opens sessions through a broker that may be killed at any moment."""

    def __init__(self, client: BrokerClient) -> None:
        self.client = client
        self.lost = 0

    def _retrying(self, call: Any) -> Any:
        for _ in range(600):
            try:
                return call()
            except httpx.TransportError:  # down, or killed mid-answer
                self.lost += 1
                time.sleep(0.05)
        raise TimeoutError("the broker stayed away")

    def open(self, doc: dict[str, Any]) -> str:
        offerset = self._retrying(lambda: self.client.offer(doc))
        assert offerset["result"] == "YES", offerset
        uuid: str = offerset["offers"][0]["meta"]["uuid"]
        answer = self._retrying(lambda: self.client.accept(uuid))
        if answer.status_code == 409:  # accepted before a kill lost the answer?
            phase = self._retrying(lambda: self.client.session(uuid))["phase"]
            assert phase not in ("OFFERED", "REJECTED", "EXPIRED"), (uuid, phase)
        else:
            assert answer.status_code == 200, answer.text
        return uuid


def _killer(
    broker: BrokerProcess,
    kills: int,
    alive: tuple[float, float],
    rng: random.Random,
    errors: list[BaseException],
) -> None:
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(*alive))
            broker.kill()
            broker.start()
    except BaseException as exc:  # handed to the main thread
        errors.append(exc)


def run_crash(
    root: Path,
    database_url: str,
    *,
    sessions: int,
    kills: int,
    seed: int,
    alive: tuple[float, float] = (0.3, 2.0),
    timeout: float = 180.0,
) -> CrashRun:
    engine = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    run = CrashRun(engine, sessions, kills)
    rng = random.Random(seed)
    began = time.monotonic()
    with start_site(root / "site", sessions, sizes=SIZES, bandwidth=BANDWIDTH) as rig:
        broker = BrokerProcess(broker_settings(rig, database_url), root / "broker")
        broker.start()
        client = BrokerClient(broker.url)
        opener = _Opener(client)
        errors: list[BaseException] = []
        killer = threading.Thread(
            target=_killer, args=(broker, kills, alive, rng, errors), daemon=True
        )
        try:
            uuids = [opener.open(job_request(rig, 0))]
            killer.start()  # from the first acceptance on
            uuids += [opener.open(job_request(rig, i)) for i in range(1, sessions)]
            killer.join(timeout)
            assert not killer.is_alive(), "the killer did not finish"
            if errors:
                raise errors[0]
            run.kills = broker.kills  # as done, not as planned
            last = time.monotonic()
            docs = client.sessions(uuids, timeout=timeout)
            run.settled = time.monotonic() - last
            run.seconds = time.monotonic() - began
            run.lost_answers = opener.lost
            run.downtimes = list(broker.downtimes)
            for index, uuid in enumerate(uuids):
                doc = docs.get(uuid, {"phase": "UNKNOWN"})
                run.phases[doc["phase"]] += 1
                if doc["phase"] != "COMPLETED":
                    run.wrong[uuid] = f"{doc['phase']}: {messages(doc)}"
                    continue
                if unlike := unlike_undisturbed(client.events(uuid)):
                    run.wrong[uuid] = unlike
                placed = rig.home / "worksteps" / uuid / file_name(index)
                if not placed.is_file() or placed.stat().st_size != SIZES[index % len(SIZES)]:
                    run.wrong[uuid] = f"no data at {placed}"
        finally:
            broker.stop()
        run.submitted = submissions(rig)
        twice = {name: n for name, n in replications(rig).items() if n != 1}
        if twice:
            run.wrong["harbor"] = f"replications per image policy, other than one: {twice}"
    return run
