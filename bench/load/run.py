"""Load benchmark: (a) many users run the whole flow at once; (b) a thousand SSE watchers.

    .venv/bin/python bench/load/run.py            # 100 users; 1,000 watchers for 60 s
    .venv/bin/python bench/load/run.py --quick    # 10 users; 100 watchers for 12 s

The federation (three sites, their emulators, the issuer and the embedded gateway) runs in a
process of its own; part (b) aims at a second gateway, in a process of its own too, built as
the embedded one is, so that its memory is the gateway's alone. The load runs here. Prints
Markdown tables; see bench/README.md ("load/") for the method and the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from children import Child, cpu_seconds, rss_mb
from flow import STAGES, run_flow, skaha_creations
from report import percentile, table
from watchers import WatchResult, run_watchers

from worksteps.emulators.oidc import LocalIssuer

TARGET_P99_MS = 250.0
TARGET_RSS_MB = 300.0


def _flow(federation: Child, issuer: LocalIssuer, users: int) -> bool:
    before = skaha_creations(federation.info)
    cpu = cpu_seconds(federation.pid)
    started = time.monotonic()
    runs = asyncio.run(run_flow(federation.info["services"]["gateway"], issuer, users))
    wall = time.monotonic() - started
    cpu = cpu_seconds(federation.pid) - cpu
    creations = skaha_creations(federation.info) - before
    ready = sum(r.ready for r in runs)
    ended = sum(bool(r.final) for r in runs)
    sessions = len({r.execution for r in runs if r.ready})
    failed = [r for r in runs if r.error]
    print(f"\n### (a) {users} users, the whole flow at once\n")
    rows = [
        [stage]
        + [
            1000 * percentile([r.times[stage] for r in runs if stage in r.times], p)
            for p in (50, 90, 100)
        ]
        for stage in STAGES
    ]
    print(table(["stage", "p50 ms", "p90 ms", "max ms"], rows))
    sites = {s: sum(r.site == s for r in runs) for s in sorted({r.site for r in runs if r.site})}
    print()
    print(
        table(
            [
                "users",
                "ready",
                "ended",
                "sessions",
                "Skaha creations",
                "lost",
                "duplicated",
                "failed",
                "wall s",
                "federation CPU s",
                "sites",
            ],
            [
                [
                    users,
                    ready,
                    ended,
                    sessions,
                    creations,
                    users - ready,
                    creations - sessions,
                    len(failed),
                    wall,
                    cpu,
                    ", ".join(f"{s}: {n}" for s, n in sites.items()),
                ]
            ],
        )
    )
    for run in failed[:5]:
        print(f"- {run.user}: {run.error}")
    ok = ready == users == ended and creations == sessions == users
    print(f"\nEvery session ready, none lost or duplicated: {'MET' if ok else 'MISSED'}")
    return ok


def _watchers(
    result: WatchResult, watchers: int, lanes: int, gateway_cpu: float, federation_cpu: float
) -> bool:
    phase_p99 = 1000 * percentile(result.phase_latencies, 99)
    peak = max(result.gateway_rss, default=0.0)
    print(f"\n### (b) {watchers} SSE watchers over {lanes} lanes, {result.duration:.0f} s\n")
    rows = [
        [name, len(values)] + [1000 * percentile(values, p) for p in (50, 90, 99, 100)]
        for name, values in (
            ("phase events", result.phase_latencies),
            ("all events", result.latencies),
            *((f"phase {p}", v) for p, v in sorted(result.by_phase.items())),
        )
    ]
    print(table(["notifications", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows))
    opened = result.open_streams
    print()
    print(
        table(
            [
                "open streams min",
                "median",
                "max",
                "streams opened",
                "refused",
                "sessions",
                "gateway RSS peak MiB",
                "federation RSS peak MiB",
                "gateway CPU s",
                "federation CPU s",
            ],
            [
                [
                    min(opened, default=0),
                    int(percentile(opened, 50)),
                    max(opened, default=0),
                    result.streams,
                    result.refused,
                    result.sessions,
                    peak,
                    max(result.federation_rss, default=0.0),
                    gateway_cpu,
                    federation_cpu,
                ]
            ],
        )
    )
    for error in result.errors[:5]:
        print(f"- {error}")
    met_latency = phase_p99 <= TARGET_P99_MS
    met_rss = peak <= TARGET_RSS_MB
    print(
        f"\nNotification p99 <= {TARGET_P99_MS:g} ms: {'MET' if met_latency else 'MISSED'} "
        f"({phase_p99:.1f} ms); gateway RSS <= {TARGET_RSS_MB:g} MB: "
        f"{'MET' if met_rss else 'MISSED'} ({peak:.0f} MiB)"
    )
    return met_latency and met_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="10 users; 100 watchers over 5 lanes for 12 s"
    )
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--lanes", type=int, default=20, help="sessions watched at once")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of watching")
    parser.add_argument("--hold", type=float, default=20.0, help="s a session runs, watched")
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--logs", help="folder to keep the parts' standard error in")
    args = parser.parse_args()
    if args.quick:
        args.users, args.watchers, args.lanes, args.duration, args.hold = 10, 100, 5, 12.0, 4.0
    print(
        f"Load benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="worksteps-bench-load-") as folder:
        data = Path(folder)
        logs = Path(args.logs) if args.logs else data / "logs"
        federation_args = [f"--data-dir={data / 'federation'}"]
        with Child("federation_process.py", federation_args, logs / "federation.log") as federation:
            key = data / "federation" / "issuer-key.json"
            issuer = LocalIssuer(federation.info["services"]["issuer"], key_file=key)
            print(f"federation up: RSS {rss_mb(federation.pid):.0f} MiB")
            if args.part in ("a", "both"):
                _flow(federation, issuer, args.users)
            if args.part in ("b", "both"):
                gateway_args = [
                    f"--data-dir={data / 'gateway'}",
                    f"--federation={data / 'federation'}",
                ]
                with Child("gateway_process.py", gateway_args, logs / "gateway.log") as gateway:
                    print(f"\ngateway up: RSS {rss_mb(gateway.pid):.0f} MiB")
                    cpu = cpu_seconds(gateway.pid)
                    cpu_federation = cpu_seconds(federation.pid)
                    result = asyncio.run(
                        run_watchers(
                            gateway.info["gateway"],
                            issuer,
                            watchers=args.watchers,
                            lanes=args.lanes,
                            duration=args.duration,
                            hold=args.hold,
                            pids={"gateway": gateway.pid, "federation": federation.pid},
                        )
                    )
                    _watchers(
                        result,
                        args.watchers,
                        args.lanes,
                        cpu_seconds(gateway.pid) - cpu,
                        cpu_seconds(federation.pid) - cpu_federation,
                    )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
