"""The results: one row per (engine, bookings), the targets, and their place in bench/README.md.

The README keeps its prose; only the text between the two result markers is replaced, so a run
never loses the explanation of how the figures were made.
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from loadgen import Measurement

__all__ = ["Row", "machine", "render_results", "table", "targets", "write_readme"]

START = "<!-- offers:results:start -->"
END = "<!-- offers:results:end -->"

# The targets, for this 2-core machine.
MIN_RATE = 300.0  # requests/s at 10k bookings
MAX_P99_MS = 50.0  # at 10k bookings
MAX_GROWTH = 2.0  # latency at 100k bookings over latency at 1k


@dataclass(frozen=True)
class Row:
    engine: str
    bookings: int
    concurrency: int
    measured: Measurement

    @property
    def rate(self) -> float:
        return self.measured.requests / self.measured.seconds if self.measured.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile of the answered requests' latencies, in milliseconds."""
        ordered = sorted(self.measured.latencies)
        if not ordered:
            return math.nan
        return 1000 * ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def yes_share(self) -> float:
        answered = len(self.measured.latencies)
        return self.measured.answered_yes / answered if answered else 0.0


_HEAD = (
    "engine",
    "bookings",
    "requests",
    "concurrency",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "YES",
    "offers/req",
    "broker CPU ms/req",
    "client CPU",
    "errors",
)


def _cells(row: Row) -> tuple[str, ...]:
    m = row.measured
    per_request = m.requests or 1
    return (
        row.engine,
        f"{row.bookings:,}",
        str(m.requests),
        str(row.concurrency),
        f"{row.rate:.0f}",
        f"{row.percentile_ms(50):.1f}",
        f"{row.percentile_ms(90):.1f}",
        f"{row.percentile_ms(99):.1f}",
        f"{100 * row.yes_share:.0f} %",
        f"{m.offers / per_request:.1f}",
        f"{1000 * m.server_cpu / per_request:.2f}",
        f"{100 * m.client_cpu / m.seconds:.0f} %" if m.seconds else "-",
        str(m.errors),
    )


def table(rows: list[Row], *, markdown: bool) -> str:
    cells = [_HEAD, *(_cells(r) for r in rows)]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        rule = ("---" if i == 0 else "---:" for i in range(len(_HEAD)))
        lines.insert(1, "|" + "|".join(rule) + "|")
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in cells) for i in range(len(_HEAD))]
    return "\n".join(
        "  ".join(c[i].ljust(w) if i == 0 else c[i].rjust(w) for i, w in enumerate(widths))
        for c in cells
    )


def _find(rows: list[Row], engine: str, bookings: int) -> Row | None:
    return next((r for r in rows if r.engine == engine and r.bookings == bookings), None)


def targets(rows: list[Row]) -> list[str]:
    """One line per engine and target: met or missed, with the figures it was judged on."""
    lines: list[str] = []
    for engine in dict.fromkeys(r.engine for r in rows):
        mid = _find(rows, engine, 10_000)
        if mid is not None:
            ok = mid.rate >= MIN_RATE
            lines.append(
                f"{engine}: >= {MIN_RATE:.0f} requests/s at 10k bookings: "
                f"{'met' if ok else 'MISSED'} ({mid.rate:.0f}/s)"
            )
            p99 = mid.percentile_ms(99)
            lines.append(
                f"{engine}: p99 <= {MAX_P99_MS:.0f} ms at 10k bookings: "
                f"{'met' if p99 <= MAX_P99_MS else 'MISSED'} ({p99:.1f} ms)"
            )
        small, large = _find(rows, engine, 1_000), _find(rows, engine, 100_000)
        if small is not None and large is not None:
            growth = {p: large.percentile_ms(p) / small.percentile_ms(p) for p in (50, 99)}
            ok = all(g <= MAX_GROWTH for g in growth.values())
            lines.append(
                f"{engine}: latency at 100k <= {MAX_GROWTH:.0f}x latency at 1k (p50 and p99): "
                f"{'met' if ok else 'MISSED'} (p50 x{growth[50]:.2f}, p99 x{growth[99]:.2f})"
            )
    return lines


def machine() -> str:
    """``N cores, <model name>`` as ``nproc`` and ``lscpu`` tell it."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        found = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        model = found.group(1).strip() if found else model
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{os.cpu_count()} cores, {model}"


def render_results(
    rows: list[Row], *, date: str, command: str, notes: list[str], host: str | None = None
) -> str:
    where = f"{host} ({machine()})" if host else machine()
    lines = [
        f"Measured on {date}, on {where}, Python {platform.python_version()}.",
        "",
        "```",
        command,
        "```",
        "",
        table(rows, markdown=True),
        "",
        "Targets:",
        "",
        *(f"- {t}" for t in targets(rows)),
    ]
    if notes:
        lines += ["", "Notes:", "", *(f"- {n}" for n in notes)]
    return "\n".join(lines)


def write_readme(path: Path, results: str) -> None:
    """Replace the text between the result markers of ``path`` (appending them if absent)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{START}\n{results}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
