"""The results: one row per configuration, the targets, and their place in bench/README.md.

Overhead is judged per execution: without a hanging broker, the execution's total minus the
slowest healthy broker's time for that same execution (as the emulated brokers measured it);
with one, the total minus the deadline. Only the text between the two result markers of the
README is replaced.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from pathlib import Path

from measure import Measurement, Repetition

__all__ = ["Row", "render_results", "table", "targets", "write_readme"]

START = "<!-- fanout:results:start -->"
END = "<!-- fanout:results:end -->"

# The targets.
MAX_OVERHEAD = 0.030  # total <= slowest healthy broker + 30 ms
MAX_OVERHEAD_HANGING = 0.100  # with a hanging broker: total <= deadline + 100 ms


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Row:
    measured: Measurement

    @property
    def limit(self) -> float:
        return MAX_OVERHEAD_HANGING if self.measured.hanging else MAX_OVERHEAD

    def overhead(self, repetition: Repetition) -> float:
        reference = self.measured.deadline if self.measured.hanging else repetition.slowest
        return repetition.total - reference

    def overheads(self) -> list[float]:
        return [self.overhead(r) for r in self.measured.repetitions]

    def totals(self) -> list[float]:
        return [r.total for r in self.measured.repetitions]

    @property
    def target(self) -> str:
        reference = "deadline" if self.measured.hanging else "slowest"
        return f"{reference} + {1000 * self.limit:.0f} ms"

    @property
    def met(self) -> bool:
        return percentile(self.overheads(), 99) <= self.limit and not self.missed

    @property
    def missed(self) -> int:
        return sum(r.missed for r in self.measured.repetitions)


_HEAD = (
    "brokers",
    "hanging",
    "deadline ms",
    "runs",
    "total p50 ms",
    "total p99 ms",
    "slowest healthy p50 ms",
    "overhead p50 ms",
    "overhead p99 ms",
    "last request in p50 ms",
    "after last answer p50 ms",
    "first run overhead ms",
    "client CPU ms/run",
    "healthy without offers",
    "target (p99)",
    "met",
)


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{1000 * seconds:.1f}"


def _cells(row: Row) -> tuple[str, ...]:
    m = row.measured
    runs = m.repetitions
    return (
        str(m.brokers),
        "yes" if m.hanging else "no",
        f"{1000 * m.deadline:.0f}",
        str(len(runs)),
        _ms(percentile(row.totals(), 50)),
        _ms(percentile(row.totals(), 99)),
        _ms(percentile([r.slowest for r in runs], 50)),
        _ms(percentile(row.overheads(), 50)),
        _ms(percentile(row.overheads(), 99)),
        _ms(percentile([r.sent for r in runs], 50)),
        _ms(percentile([r.after for r in runs], 50)),
        _ms(row.overhead(m.cold)) if m.cold else "-",
        _ms(sum(r.cpu for r in runs) / len(runs)) if runs else "-",
        str(row.missed),
        row.target,
        "yes" if row.met else "NO",
    )


def table(rows: list[Row], *, markdown: bool) -> str:
    cells = [_HEAD, *(_cells(r) for r in rows)]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        rule = ("---" if i in (1, 14, 15) else "---:" for i in range(len(_HEAD)))
        lines.insert(1, "|" + "|".join(rule) + "|")
        return "\n".join(lines)
    widths = [max(len(c[i]) for c in cells) for i in range(len(_HEAD))]
    return "\n".join("  ".join(c[i].rjust(w) for i, w in enumerate(widths)) for c in cells)


def targets(rows: list[Row]) -> list[str]:
    """One line per configuration: met or missed, with the figure it was judged on."""
    lines = []
    for row in rows:
        m = row.measured
        which = "one hanging" if m.hanging else "none hanging"
        p99 = percentile(row.overheads(), 99)
        judged = f"overhead p99 {1000 * p99:.1f} ms"
        if row.missed:
            judged += f"; {row.missed} healthy answers missing"
        lines.append(
            f"{m.brokers} brokers, {which}: total <= {row.target}: "
            f"{'met' if row.met else 'MISSED'} ({judged})"
        )
    return lines


def render_results(rows: list[Row], *, date: str, command: str, notes: list[str], host: str) -> str:
    lines = [
        f"Measured on {date}, on {host}, Python {platform.python_version()}.",
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
    text = path.read_text(encoding="utf-8")
    block = f"{START}\n{results}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
