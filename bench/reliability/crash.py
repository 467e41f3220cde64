"""SIGKILL the broker at random moments while it prepares 50 sessions, 10 times, on SQLite and
on PostgreSQL, and count every external submission at the emulators.

The scenario is the test suite's (``tests/reliability/reliability_crash.py``), at full size:
a site of emulators in this process, the broker in its own OS process (uvicorn), restarted at
once after each SIGKILL. A run passes when every session COMPLETED with the phase history of
an undisturbed one, no step was submitted twice, its data is in its area, and the emulators
received exactly one Rucio rule, one Harbor replication and one Skaha session per session
(Cavern transfers are redone by design and only reported).

    .venv/bin/python bench/reliability/crash.py                  # 50 x 10 on both engines
    .venv/bin/python bench/reliability/crash.py --runs 3 --engines postgresql
    .venv/bin/python bench/reliability/crash.py --write          # also into RESULTS.md here
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import shlex
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "reliability"))

from reliability_crash import CrashRun, run_crash  # noqa: E402

from worksteps.core.database import async_url  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
COLUMNS = (
    "engine",
    "run",
    "seed",
    "sessions",
    "kills",
    "wall s",
    "down s (median, max)",
    "settled s",
    "COMPLETED",
    "Rucio rules",
    "Harbor replications",
    "Skaha sessions",
    "Cavern transfers",
    "answers lost",
    "verdict",
)


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _one(engine: str, args: argparse.Namespace, seed: int) -> CrashRun:
    with tempfile.TemporaryDirectory(prefix="worksteps-crash-") as folder:
        if engine == "sqlite":
            url = f"sqlite:///{folder}/broker.sqlite"
            return run_crash(Path(folder), url, sessions=args.sessions, kills=args.kills, seed=seed)
        name = f"worksteps_crash_{secrets.token_hex(4)}"
        asyncio.run(_admin(args.postgres, f'CREATE DATABASE "{name}"'))
        try:
            url = f"{args.postgres.rsplit('/', 1)[0]}/{name}"
            return run_crash(Path(folder), url, sessions=args.sessions, kills=args.kills, seed=seed)
        finally:
            asyncio.run(_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _row(run: CrashRun, number: int, seed: int) -> list[str]:
    down = run.downtimes or [0.0]
    submitted = run.submitted
    return [
        run.engine,
        str(number),
        str(seed),
        str(run.sessions),
        str(run.kills),
        f"{run.seconds:.0f}",
        f"{statistics.median(down):.2f}, {max(down):.2f}",
        f"{run.settled:.1f}",
        str(run.phases["COMPLETED"]),
        str(submitted.get("Rucio rule", 0)),
        str(submitted.get("Harbor replication", 0)),
        str(submitted.get("Skaha session", 0)),
        str(submitted.get("Cavern transfer", 0)),
        str(run.lost_answers),
        "pass" if run.ok else "FAIL",
    ]


def _table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--runs", type=int, default=1, help="runs per engine (seeds 1, 2, ...)")
    parser.add_argument("--postgres", default=ADMIN, help="server for throwaway databases")
    parser.add_argument("--write", action="store_true", help="write RESULTS.md beside this")
    args = parser.parse_args(argv)
    rows: list[list[str]] = []
    failures: list[str] = []
    for engine in args.engines.split(","):
        for number in range(1, args.runs + 1):
            print(f"{engine} run {number} ...", file=sys.stderr)
            run = _one(engine, args, number)
            rows.append(_row(run, number, number))
            failures += [f"{engine} run {number}: {key}: {why}" for key, why in run.wrong.items()]
            if run.repeated:
                failures.append(f"{engine} run {number}: submitted other than once: {run.repeated}")
    table = _table(rows)
    print(table)
    for failure in failures:
        print(failure)
    if args.write:
        command = shlex.join([".venv/bin/python", "bench/reliability/crash.py", *argv])
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        date = datetime.now(UTC).date().isoformat()
        notes = "\n".join(f"- {f}" for f in failures) or "- every run passed"
        (HERE / "RESULTS.md").write_text(
            f"# Crash runs\n\nMeasured on {date}, {machine}, load average "
            f"{os.getloadavg()[0]:.1f} at the end.\n\n```\n{command}\n```\n\n{table}\n\n{notes}\n"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
