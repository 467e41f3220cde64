"""The fan-out benchmark (``bench/fanout``) still runs: the execution service asks three
emulated brokers over loopback, with and without one hanging, and gets every healthy
broker's offers. Nothing is timed here; the benchmark's exit status says whether a healthy
broker's offers were missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "bench" / "fanout" / "run.py"


def test_the_fanout_benchmark_gets_every_healthy_brokers_offers() -> None:
    options = ["--brokers", "3", "--repetitions", "1", "--warmup", "1", "--no-readme"]
    done = subprocess.run(
        [sys.executable, str(RUN), *options, "--deadline", "0.3", "--latency", "10-50"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "3 brokers, none hanging: total <= slowest + 30 ms" in done.stdout, done.stdout
    assert "3 brokers, one hanging: total <= deadline + 100 ms" in done.stdout, done.stdout
    rows = [line.split() for line in lines[1:3]]
    assert [row[:4] for row in rows] == [["3", "no", "300", "1"], ["3", "yes", "300", "1"]]
