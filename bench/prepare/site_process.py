"""The emulated site (Skaha, Rucio, Cavern, Harbor…) as its own process, as a real site is.

Run as a script, it starts :func:`worksteps.emulators.rig.start_site_rig` with the benchmark's
catalogue (one remote-only file per session, so every session really stages its file: the
emulated Rucio keeps a replica once made, and a second rule for the same file would find the
data already local), prints one JSON line (the ``SiteServicesSettings`` with their secrets,
the registry host and every emulator's URL) and serves until its standard input closes.

Running the emulators in the benchmark's own process would let their threads compete for the
interpreter lock with the clients whose receive times are measured; in production they are
other machines. The secrets printed are random, made for this run, and only reach the parent
through a pipe.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import bench_root  # noqa: F401  (puts bench/ on the path for ``common``)
from pydantic import SecretStr

from common.processes import cpu_seconds

__all__ = ["SiteConfig", "SiteProcess", "file_name"]


@dataclass(frozen=True)
class SiteConfig:
    """The emulated site's speeds; the critical path of a session follows from these."""

    files: int = 60  # one per session, warm-up included, over all configurations
    file_size: int = 256 * 1024  # bytes of each session's file
    bandwidth: float = 1e6  # bytes/s, Rucio transfer REMOTE -> site RSE
    transfer_latency: float = 0.1  # s before a rule's first transfer starts
    storage_bandwidth: float = 2e6  # bytes/s of Cavern copies into the user's area
    start_latency: float = 0.5  # s a Skaha session stays Pending
    image_pull_rate: float = 100e6  # bytes/s of Harbor replication (unused: image cached)

    def arguments(self) -> list[str]:
        return [
            f"--files={self.files}",
            f"--file-size={self.file_size}",
            f"--bandwidth={self.bandwidth}",
            f"--transfer-latency={self.transfer_latency}",
            f"--storage-bandwidth={self.storage_bandwidth}",
            f"--start-latency={self.start_latency}",
            f"--image-pull-rate={self.image_pull_rate}",
        ]


def file_name(index: int) -> str:
    """The Rucio file name (scope ``demo``) of the ``index``-th session's data."""
    return f"bench-{index:04d}.fits"


class SiteProcess:
    """``with SiteProcess(config) as site:`` runs the rig; ``site.info`` is its JSON line."""

    def __init__(self, config: SiteConfig, startup_timeout: float = 60.0) -> None:
        self.config = config
        self.startup_timeout = startup_timeout
        self.info: dict[str, Any] = {}
        self._folder = tempfile.TemporaryDirectory(prefix="worksteps-bench-site-")
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SiteProcess:
        command = [sys.executable, __file__, f"--root={self._folder.name}"]
        self._process = subprocess.Popen(
            [*command, *self.config.arguments()], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], self.startup_timeout)
        line = self._process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError("the site process did not start")
        self.info = json.loads(line)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds the site process has used so far (Linux /proc)."""
        return 0.0 if self._process is None else cpu_seconds(self._process.pid)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()  # the child stops its emulators when its input ends
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=5)
        self._folder.cleanup()


def _reveal(value: object) -> object:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _serve(args: argparse.Namespace) -> None:
    from worksteps.emulators.rig import DEFAULT_IMAGES, DemoFile, start_site_rig

    files = [DemoFile(file_name(i), args.file_size) for i in range(args.files)]
    rig = start_site_rig(
        "bench",
        Path(args.root) / "site",
        files=files,
        images=DEFAULT_IMAGES,
        bandwidth=args.bandwidth,
        transfer_latency=args.transfer_latency,
        storage_bandwidth=args.storage_bandwidth,
        start_latency=args.start_latency,
        image_pull_rate=args.image_pull_rate,
    )
    with rig:
        info = {
            "services": rig.services_settings.model_dump(),
            "registry": rig.harbor.url.removeprefix("http://"),
            "emulators": {name: e.url for name, e in rig.emulators.items()},
        }
        sys.stdout.write(json.dumps(info, default=_reveal) + "\n")
        sys.stdout.flush()
        while sys.stdin.buffer.read(4096):  # until the parent closes the pipe (or dies)
            time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description="serve an emulated site until stdin closes")
    parser.add_argument("--root", required=True)
    parser.add_argument("--files", type=int, required=True)
    parser.add_argument("--file-size", type=int, required=True)
    parser.add_argument("--bandwidth", type=float, required=True)
    parser.add_argument("--transfer-latency", type=float, required=True)
    parser.add_argument("--storage-bandwidth", type=float, required=True)
    parser.add_argument("--start-latency", type=float, required=True)
    parser.add_argument("--image-pull-rate", type=float, required=True)
    _serve(parser.parse_args())


if __name__ == "__main__":
    main()
