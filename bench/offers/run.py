"""Offer-set requests per second and latency of the Execution Broker, by bookings and engine.

For each engine (SQLite file, PostgreSQL) and each calendar size (1k, 10k, 100k active
bookings): a throwaway database is migrated by the product and preloaded with BOOKED bookings
(``preload``), the broker is started as its own uvicorn process (``broker_process``), warmed
up, and then sent a fixed number of offer requests with bounded concurrency (``loadgen``).
The table is printed and, for a full run, written into ``bench/README.md`` (``report``).

Everything runs on 127.0.0.1, every loop is bounded by a request count and a time limit, and
every database and process made here is removed before the next configuration starts.

    .venv/bin/python bench/offers/run.py            # the full run, 6-9 minutes
    .venv/bin/python bench/offers/run.py --quick    # a smoke run, about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from broker_process import BrokerProcess
from loadgen import run_load
from preload import preload, throwaway_database
from report import Row, render_results, table, targets, write_readme
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from worksteps.core.database import async_url

__all__ = ["main"]

README = Path(__file__).resolve().parent.parent / "README.md"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _sizes(value: str) -> list[int]:
    return [int(part.replace("_", "").replace("k", "000")) for part in value.split(",")]


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1k bookings, 64 requests")
    parser.add_argument("--engines", default="sqlite,postgresql", help="sqlite and/or postgresql")
    parser.add_argument("--bookings", type=_sizes, help="sizes, e.g. 1k,10k,100k")
    parser.add_argument("--requests", type=int, help="timed requests per configuration")
    parser.add_argument("--warmup", type=int, help="untimed requests first, per configuration")
    parser.add_argument("--time-limit", type=float, help="timed seconds at most, per configuration")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--round", type=int, default=16, help="requests between rejections")
    parser.add_argument("--postgres", default=ADMIN_URL, help="server to make throwaway DBs on")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--machine", help="the machine's name, for the README (e.g. python-svc)")
    parser.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the results into bench/README.md (default: on for a full run)",
    )
    args = parser.parse_args(argv)
    args.bookings = args.bookings or ([1_000] if args.quick else [1_000, 10_000, 100_000])
    args.requests = args.requests or (64 if args.quick else 600)
    args.warmup = args.warmup if args.warmup is not None else (16 if args.quick else 50)
    args.time_limit = args.time_limit or (15.0 if args.quick else 45.0)
    args.readme = (not args.quick) if args.readme is None else args.readme
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    for engine in args.engines:
        if engine not in ("sqlite", "postgresql"):
            parser.error(f"unknown engine {engine!r}")
    return args


async def _configuration(engine: str, bookings: int, args: argparse.Namespace) -> Row:
    async with throwaway_database(engine, args.postgres) as url:
        loaded = await preload(url, bookings, seed=args.seed)
        print(
            f"  {engine}, {bookings:,} bookings loaded in {loaded.seconds:.1f} s; "
            f"capacity {loaded.capacity}",
            file=sys.stderr,
        )
        with BrokerProcess(url, loaded.capacity) as broker:
            options = {
                "concurrency": args.concurrency,
                "round_size": args.round,
                "time_limit": args.time_limit,
            }
            await run_load(
                broker.url,
                args.warmup,
                seed=args.seed - 1,
                server_cpu=broker.cpu_seconds,
                **options,
            )
            measured = await run_load(
                broker.url,
                args.requests,
                seed=args.seed,
                server_cpu=broker.cpu_seconds,
                **options,
            )
    return Row(engine, bookings, args.concurrency, measured)


async def _reachable(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError) as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        await engine.dispose()
    return None


async def _run(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    loads: list[str] = []
    for engine in args.engines:
        if engine == "postgresql" and (why := await _reachable(args.postgres)) is not None:
            notes.append(f"PostgreSQL skipped: no server at {args.postgres} ({why}).")
            print(notes[-1], file=sys.stderr)
            continue
        for bookings in args.bookings:
            loads.append(f"{engine} {bookings:,}: {os.getloadavg()[0]:.1f}")
            rows.append(await _configuration(engine, bookings, args))
            if rows[-1].measured.requests < args.requests:
                notes.append(
                    f"{engine} {bookings:,}: stopped at the {args.time_limit:.0f} s time limit "
                    f"after {rows[-1].measured.requests} of {args.requests} requests."
                )
            print(table(rows[-1:], markdown=False).splitlines()[-1], file=sys.stderr)
    loads.append(f"end: {os.getloadavg()[0]:.1f}")
    notes.append(f"1-minute load average as each configuration began: {'; '.join(loads)}.")
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _arguments(argv)
    began = time.monotonic()
    rows, notes = asyncio.run(_run(args))
    notes.append(f"Whole run: {time.monotonic() - began:.0f} s.")
    print(table(rows, markdown=False))
    print()
    for line in [*targets(rows), *notes]:
        print(line)
    if args.readme:
        command = shlex.join([".venv/bin/python", "bench/offers/run.py", *argv])
        date = datetime.now(UTC).date().isoformat()
        results = render_results(rows, date=date, command=command, notes=notes, host=args.machine)
        write_readme(README, results)
        print(f"\nwritten to {README}")
    return 1 if any(r.measured.errors for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
