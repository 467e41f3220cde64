"""Accept-to-AVAILABLE overhead of the preparation engine, and change-to-client latency.

For each configuration (database engine x engine polling settings): an emulated site runs as
its own process (``site_process``), a throwaway database is made, the broker runs as its own
uvicorn process with the site's services (``broker_process``), a few untimed sessions warm it
up, then sessions are driven one after another (``drive``): offers, accept, reject the rest,
AVAILABLE, cancel, each followed by an SSE and a long-poll client. ``analysis`` turns each
session into its critical path, overhead and notification latencies; ``report`` prints the
tables and, for a full run, writes them into ``RESULTS.md`` beside this file.

Everything runs on 127.0.0.1; every loop is bounded by a session count and a time limit; each
configuration's processes and database are removed before the next one starts.

    .venv/bin/python bench/prepare/run.py            # the full run, about 6-8 minutes
    .venv/bin/python bench/prepare/run.py --quick    # a smoke run, under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from analysis import Analysed, analyse
from broker_process import BrokerProcess
from calibrate import Direct, calibrate
from database import reachable, step_facts, throwaway_database, transactions
from drive import SessionRun, run_session
from report import Config, Outcome, machine, render
from site_process import SiteConfig, SiteProcess

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
START = "<!-- results:start -->"
END = "<!-- results:end -->"
APP = "worksteps.broker.api.app:create_app"
TUNED = {"poll_min": 0.02, "poll_max": 0.1}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: SQLite, engine defaults, 5 sessions"
    )
    parser.add_argument("--engines", help="sqlite and/or postgresql (default: both)")
    parser.add_argument(
        "--polling", help=f"engine settings: defaults and/or tuned {TUNED} (default: both)"
    )
    parser.add_argument("--sessions", type=int, help="timed sessions per configuration")
    parser.add_argument("--warmup", type=int, help="untimed sessions first")
    parser.add_argument("--time-limit", type=float, help="timed seconds at most per config")
    parser.add_argument(
        "--direct", type=int, help="runs of the chain straight through the adapters (site floor)"
    )
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between sessions")
    parser.add_argument("--long-poll-wait", type=float, default=30.0, help="?wait= seconds")
    parser.add_argument(
        "--profile", type=Path, help="folder for a cProfile of each broker (slows it down)"
    )
    parser.add_argument(
        "--app",
        default=APP,
        help="ASGI factory the broker process serves (an experimental variant on PYTHONPATH)",
    )
    parser.add_argument("--postgres", default=ADMIN_URL, help="server to make throwaway DBs on")
    parser.add_argument(
        "--results",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the tables into bench/prepare/RESULTS.md (default: on for a full run)",
    )
    args = parser.parse_args(argv)
    args.sessions = args.sessions or (5 if args.quick else 50)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.direct = args.direct if args.direct is not None else (3 if args.quick else 10)
    args.time_limit = args.time_limit or (30.0 if args.quick else 100.0)
    args.results = (not args.quick) if args.results is None else args.results
    engines = (args.engines or ("sqlite" if args.quick else "sqlite,postgresql")).split(",")
    polling = (args.polling or ("defaults" if args.quick else "defaults,tuned")).split(",")
    for engine in engines:
        if engine not in ("sqlite", "postgresql"):
            parser.error(f"unknown engine {engine!r}")
    for name in polling:
        if name not in ("defaults", "tuned"):
            parser.error(f"unknown polling {name!r}")
    args.configs = [
        Config(engine, dict(TUNED) if name == "tuned" else {})
        for engine in engines
        for name in polling
    ]
    return args


async def _site_calls(emulators: dict[str, str], reset: bool = False) -> int:
    """Requests the emulators counted (their ``/_emulator`` control API); optionally reset."""
    total = 0
    async with httpx.AsyncClient(timeout=10) as client:
        for url in emulators.values():
            if reset:
                (await client.post(f"{url}/_emulator/reset")).raise_for_status()
                continue
            answer = await client.get(f"{url}/_emulator/calls")
            answer.raise_for_status()
            total += sum(int(n) for n in answer.json().values())
    return total


@dataclass
class _Measured:
    runs: list[SessionRun]
    seconds: float
    cpu: tuple[float, float]  # broker: process, event-loop thread
    site_cpu: float
    calls: int
    transactions: int | None


async def _measure(
    broker: BrokerProcess, rig: SiteProcess, url: str, args: argparse.Namespace, first: int
) -> _Measured:
    """The timed sessions ``first``, ``first + 1``, … (bounded by count and time limit)."""
    registry = str(rig.info["registry"])
    await _site_calls(rig.info["emulators"], reset=True)
    tx = await transactions(url)
    cpu, loop_cpu = broker.cpu_seconds()
    site_cpu = rig.cpu_seconds()
    started = time.monotonic()
    runs: list[SessionRun] = []
    for index in range(first, first + args.sessions):
        if time.monotonic() - started > args.time_limit:
            print(f"  time limit: {len(runs)} sessions", file=sys.stderr)
            break
        runs.append(
            await run_session(broker.url, registry, index, long_poll_wait=args.long_poll_wait)
        )
        await asyncio.sleep(args.pause)
    seconds = time.monotonic() - started
    cpu_end, loop_end = broker.cpu_seconds()
    site_cpu = rig.cpu_seconds() - site_cpu
    calls = await _site_calls(rig.info["emulators"])
    if tx is not None:
        await asyncio.sleep(1.5)  # backends publish their counters within a second
        tx = (await transactions(url) or 0) - tx
    return _Measured(runs, seconds, (cpu_end - cpu, loop_end - loop_cpu), site_cpu, calls, tx)


async def _configuration(
    config: Config, args: argparse.Namespace, rig: SiteProcess, first: int
) -> Outcome:
    """One configuration on its own database and broker; it uses the site's files from
    ``first`` on (warm-up sessions, then timed ones)."""
    load = os.getloadavg()[0]
    async with throwaway_database(config.engine, args.postgres) as url:
        profile = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile = args.profile / f"{re.sub(r'[^a-z0-9]+', '-', config.label)}.prof"
        services = rig.info["services"]
        with BrokerProcess(url, services, config.polling, profile=profile, app=args.app) as broker:
            for index in range(first, first + args.warmup):
                await run_session(broker.url, str(rig.info["registry"]), index)
                await asyncio.sleep(args.pause)
            measured = await _measure(broker, rig, url, args, first + args.warmup)
        facts = await step_facts(url, (r.uuid for r in measured.runs))
    analysed: list[Analysed] = []
    failed = 0
    for run in measured.runs:
        if run.available is None:
            failed += 1
            print(f"  session {run.index} failed: {run.error}", file=sys.stderr)
            continue
        mine = {key: f for (session, key), f in facts.items() if session == run.uuid}
        analysed.append(analyse(run, rig.config, mine))
    return Outcome(
        config,
        analysed,
        failed,
        measured.cpu[0],
        measured.cpu[1],
        measured.site_cpu,
        measured.calls,
        measured.transactions,
        measured.seconds,
        load,
    )


def _site_text(site: SiteConfig) -> str:
    return (
        f"one remote-only file of {site.file_size // 1024} KiB per session, Rucio bandwidth "
        f"{site.bandwidth / 1e6:g} MB/s after {site.transfer_latency:g} s, Cavern copies at "
        f"{site.storage_bandwidth / 1e6:g} MB/s, image cached at the site, Skaha start latency "
        f"{site.start_latency:g} s; so the critical path is stage "
        f"{1000 * (site.transfer_latency + site.file_size / site.bandwidth):.0f} ms + place "
        f"{1000 * site.file_size / site.storage_bandwidth:.0f} ms + launch "
        f"{1000 * site.start_latency:.0f} ms"
    )


def _write_results(body: str, command: str) -> None:
    date = datetime.now(UTC).date().isoformat()
    block = f"{START}\nMeasured on {date}, on {machine()}.\n\n```\n{command}\n```\n\n{body}\n{END}"
    current = RESULTS.read_text() if RESULTS.exists() else f"{START}\n{END}\n"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    RESULTS.write_text(pattern.sub(lambda _: block, current, count=1))


async def _run(
    args: argparse.Namespace, site: SiteConfig
) -> tuple[list[Outcome], list[Direct], list[str]]:
    """Every configuration against one site process (each session has its own file), then
    the direct runs that measure the site's own share."""
    outcomes: list[Outcome] = []
    direct: list[Direct] = []
    notes: list[str] = []
    skip_pg = None
    if any(c.engine == "postgresql" for c in args.configs):
        skip_pg = await reachable(args.postgres)
        if skip_pg is not None:
            notes.append(f"PostgreSQL skipped: no server at {args.postgres} ({skip_pg}).")
            print(notes[-1], file=sys.stderr)
    configs = [c for c in args.configs if c.engine != "postgresql" or skip_pg is None]
    with SiteProcess(site) as rig:
        for number, config in enumerate(configs):
            print(f"{config.label} ...", file=sys.stderr)
            first = number * (args.warmup + args.sessions)
            outcomes.append(await _configuration(config, args, rig, first))
            o = outcomes[-1]
            print(f"  {len(o.sessions)} sessions in {o.seconds:.0f} s", file=sys.stderr)
        if args.direct:
            print("the site alone, through the adapters ...", file=sys.stderr)
            first = len(args.configs) * (args.warmup + args.sessions)
            direct = await calibrate(rig.info, site, first, args.direct + 1, args.pause)
            direct = direct[1:]  # the first warms the clients up (token, capabilities)
    loads = "; ".join(f"{o.config.label}: {o.load:.1f}" for o in outcomes)
    notes.append(f"1-minute load average as each configuration began: {loads}.")
    return outcomes, direct, notes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(argv)
    files = len(args.configs) * (args.warmup + args.sessions) + args.direct + 1
    site = SiteConfig(files=files)
    began = time.monotonic()
    outcomes, direct, notes = asyncio.run(_run(args, site))
    notes.append(f"Whole run: {time.monotonic() - began:.0f} s.")
    if args.app != APP:
        notes.append(f"Broker factory: {args.app} (an experimental variant, not the product).")
    print(render(outcomes, direct, markdown=False, site=_site_text(site), notes=notes))
    if args.results:
        command = shlex.join([".venv/bin/python", "bench/prepare/run.py", *argv])
        _write_results(
            render(outcomes, direct, markdown=True, site=_site_text(site), notes=notes), command
        )
        print(f"\nwritten to {RESULTS}")
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())
