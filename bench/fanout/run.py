"""Offer-set latency of the execution service's fan-out, with 3, 10 and 50 brokers.

For each broker count, with no broker hanging and then with one hanging: the emulated brokers
(``emulated_brokers``: real HTTP on loopback, one port per site, each answering after its own
configured latency) are started as a process of their own (``broker_process``), and the
product's execution service, in this process, executes the same notebook request against them
again and again (``measure``). The table is printed and, for a full run, written into
``bench/README.md`` (``report``).

    .venv/bin/python bench/fanout/run.py            # the full run, about 4 minutes
    .venv/bin/python bench/fanout/run.py --quick    # a smoke run, about 20 seconds
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from broker_process import BrokerProcess
from measure import measure
from report import Row, render_results, table, targets, write_readme

__all__ = ["main", "run"]

_T = TypeVar("_T")

README = Path(__file__).resolve().parent.parent / "README.md"


def _counts(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


def _range_ms(value: str) -> tuple[float, float]:
    low, _, high = value.partition("-")
    return float(low) / 1000, float(high or low) / 1000


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 and 10 brokers, 10 runs")
    parser.add_argument("--brokers", type=_counts, help="broker counts, e.g. 3,10,50")
    parser.add_argument("--repetitions", type=int, help="timed executions per configuration")
    parser.add_argument("--warmup", type=int, help="untimed executions first (default 3)")
    parser.add_argument("--deadline", type=float, default=0.5, help="seconds each broker has")
    parser.add_argument(
        "--latency", type=_range_ms, default=(0.020, 0.200), help="brokers' latencies, ms: 20-200"
    )
    parser.add_argument("--offers", type=int, default=4, help="offers in each broker's answer")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--machine", default="python-svc", help="the machine's name, for README")
    parser.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the results into bench/README.md (default: on for a full run)",
    )
    args = parser.parse_args(argv)
    args.brokers = args.brokers or ([3, 10] if args.quick else [3, 10, 50])
    args.repetitions = args.repetitions or (10 if args.quick else 100)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.readme = (not args.quick) if args.readme is None else args.readme
    if args.latency[1] >= args.deadline:
        parser.error("the slowest latency must be below the deadline")
    return args


def plan(
    count: int, hanging: bool, latency: tuple[float, float], seed: int
) -> list[tuple[str, float | None]]:
    """``count`` sites with latencies drawn uniformly (whole ms) from ``latency``, the same for
    the same count; with ``hanging``, the middle one never answers instead."""
    rng = random.Random(seed + count)
    low, high = round(latency[0] * 1000), round(latency[1] * 1000)
    sites: list[tuple[str, float | None]] = [
        (f"site-{i:02d}", rng.randint(low, high) / 1000) for i in range(count)
    ]
    if hanging:
        sites[count // 2] = (f"site-{count // 2:02d}-hangs", None)
    return sites


async def run(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Every configuration, one after the other; the rows and the notes of the run."""
    rows: list[Row] = []
    loads: list[str] = []
    for count in args.brokers:
        for hanging in (False, True):
            label = f"{count}{'h' if hanging else ''}"
            loads.append(f"{label}: {os.getloadavg()[0]:.1f}")
            with (
                BrokerProcess(plan(count, hanging, args.latency, args.seed), args.offers) as b,
                tempfile.TemporaryDirectory(prefix="fanout-bench-") as workdir,
            ):
                measured = await measure(
                    b.sites,
                    deadline=args.deadline,
                    repetitions=args.repetitions,
                    warmup=args.warmup,
                    workdir=Path(workdir),
                    label=label,
                )
            rows.append(Row(measured))
            print(table(rows[-1:], markdown=False).splitlines()[-1], file=sys.stderr)
    loads.append(f"end: {os.getloadavg()[0]:.1f}")
    notes = [
        f"1-minute load average as each configuration began (h: one hanging): {'; '.join(loads)}.",
        f"Latencies drawn from {1000 * args.latency[0]:.0f}-{1000 * args.latency[1]:.0f} ms "
        f"(seed {args.seed}); {args.offers} offers per answer; {args.warmup} untimed runs "
        f"first; event loop: {args.loop}.",
    ]
    return rows, notes


def _machine(name: str) -> str:
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        if found := re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE):
            model = found.group(1).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{name} ({os.cpu_count()} cores, {model})"


def _run_on(loop: str, work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` on uvloop (what uvicorn runs the service on) or on asyncio's own loop."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(work)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = arguments(argv)
    began = time.monotonic()
    rows, notes = _run_on(args.loop, run(args))
    notes.append(f"Whole run: {time.monotonic() - began:.0f} s.")
    print(table(rows, markdown=False))
    print()
    for line in [*targets(rows), *notes]:
        print(line)
    if args.readme:
        command = shlex.join([".venv/bin/python", "bench/fanout/run.py", *argv])
        date = datetime.now(UTC).date().isoformat()
        host = _machine(args.machine)
        write_readme(
            README, render_results(rows, date=date, command=command, notes=notes, host=host)
        )
        print(f"\nwritten to {README}")
    return 1 if any(row.missed for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
