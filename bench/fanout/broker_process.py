"""The emulated brokers of one configuration, in a process of their own.

``python broker_process.py --plan JSON`` binds one loopback port per site of the plan (a list
of ``{"name", "latency"}``, latency in seconds or null for a hanging site), prints one JSON
line (its pid and each site's name, URL, latency), then serves them all on one uvloop event
loop (:class:`emulated_brokers.EmulatedBrokers`) until its standard input closes.
:class:`BrokerProcess` starts it and stops it by its own pid only.

A process of its own keeps the brokers' CPU (parsing 50 requests, building 50 answers) out of
the measuring process, as separate hosts would in production.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerProcess", "ServedBroker"]

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ServedBroker:
    """One emulated site as served: its name, base URL and latency (None: hanging)."""

    name: str
    url: str
    latency: float | None


class BrokerProcess:
    """``with BrokerProcess(plan) as brokers:`` serves the plan's sites at ``brokers.sites``."""

    def __init__(
        self, plan: list[tuple[str, float | None]], offers: int, startup_timeout: float = 60.0
    ) -> None:
        document = json.dumps([{"name": n, "latency": lat} for n, lat in plan])
        self.command = [
            sys.executable,
            str(HERE / "broker_process.py"),
            "--plan",
            document,
            "--offers",
            str(offers),
        ]
        self.startup_timeout = startup_timeout
        self.sites: list[ServedBroker] = []
        self.pid = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BrokerProcess:
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], self.startup_timeout)
        line = self._process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("the emulated brokers did not start")
        started = json.loads(line)
        self.pid = int(started["pid"])
        self.sites = [ServedBroker(s["name"], s["url"], s["latency"]) for s in started["sites"]]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self, grace: float = 15.0) -> None:
        """Close its standard input (it stops itself), then SIGKILL after ``grace`` s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def _serve(plan: list[dict[str, object]], offers: int) -> None:
    import asyncio

    import uvloop  # only the child serves
    from emulated_brokers import BrokerConnection, BrokerPlan, EmulatedBrokers

    sockets: dict[int, socket.socket] = {}
    sites: dict[int, BrokerPlan] = {}
    described = []
    for entry in plan:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)  # connections wait in the backlog until the server runs
        port = sock.getsockname()[1]
        latency = entry["latency"]
        site = BrokerPlan(str(entry["name"]), None if latency is None else float(str(latency)))
        sockets[port] = sock
        sites[port] = site
        url = f"http://127.0.0.1:{port}"
        described.append({"name": site.name, "url": url, "latency": site.latency})
    brokers = EmulatedBrokers(sites, offers)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopped = loop.create_future()

        def stop_when_stdin_closes() -> None:
            while sys.stdin.buffer.read(1):
                pass
            loop.call_soon_threadsafe(stopped.set_result, None)

        servers = [
            await loop.create_server(
                lambda port=port: BrokerConnection(brokers, port),
                sock=sock,
            )
            for port, sock in sockets.items()
        ]
        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
        sys.stdout.write(json.dumps({"pid": os.getpid(), "sites": described}) + "\n")
        sys.stdout.flush()
        await stopped
        for server in servers:
            server.close()

    uvloop.run(serve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", required=True, help="JSON list of {name, latency}")
    parser.add_argument("--offers", type=int, default=4, help="offers in each answer")
    args = parser.parse_args()
    _serve(json.loads(args.plan), args.offers)


if __name__ == "__main__":
    main()
