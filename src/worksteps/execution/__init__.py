"""Workstep Execution, the "Global Execution API": a registry of the federation's brokers,
execution requests fanned out to all of them at once with a deadline, offers ranked and
explained, one offer accepted and every other rejected, and the chosen session followed by
poll, long-poll and server-sent events until its end, when its PROV-JSON record is written.

Layers (imports go downward): ``api`` → ``service`` → ``intake`` / ``fanout`` / ``relay`` /
``ranking`` / ``store`` → ``brokers`` / ``offers`` / ``registry`` / ``db``. Brokers are reached
over HTTP only; nothing here imports :mod:`worksteps.broker`.
"""
