"""The broker, its own OS process, SIGKILLed at random moments while it prepares sessions and
restarted each time, on SQLite and on PostgreSQL: every session completes as an undisturbed
one would, and each Rucio rule, Harbor replication and Skaha session is submitted exactly once
(counted at the emulators). See ``reliability_crash.py``; ``bench/reliability/crash.py`` runs
the full 50 sessions and 10 kills, several times over, and prints a table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reliability_crash import run_crash

SEED = int(os.environ.get("WORKSTEPS_CRASH_SEED", "7"))


@pytest.mark.parametrize(("sessions", "kills"), [(20, 5)])
def test_sigkill_during_preparation_loses_nothing_and_repeats_no_submission(
    tmp_path: Path, database_url: str, sessions: int, kills: int
) -> None:
    run = run_crash(tmp_path, database_url, sessions=sessions, kills=kills, seed=SEED)
    assert run.kills == kills
    assert run.phases == {"COMPLETED": sessions}, run.wrong
    assert not run.wrong, run.wrong
    assert not run.repeated, run.submitted
    assert run.submitted["Cavern transfer"] >= sessions  # at least once (they are redone)
