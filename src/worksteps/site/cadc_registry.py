"""The process-wide registry cache that cadcutils (under ``vos``) reads to discover services.

cadcutils resolves ``ivo://<auth>/<name>`` through a registry cache file
(``<dir>/resource-caps``) that it would refresh from the CADC registry on the internet once the
file is 10 minutes old, and caches each service's capabilities beside it. The folder is one
per process (``cadcutils.net.ws.CACHE_LOCATION``), so :data:`REGISTRY` owns it for the whole
process; :class:`~worksteps.site.cavern.CavernStorage` registers its service here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from cadcutils.net import ws as cadc_ws

__all__ = ["REGISTRY", "CadcRegistry"]


class CadcRegistry:
    """The process-wide registry cache cadcutils reads (one location per process).

    cadcutils' cache is not safe for concurrent use. ``cadcutils.util.get_url_content``
    creates a missing cache folder with a check-then-``makedirs`` (two threads discovering at
    once: one gets ``FileExistsError``), and writes a downloaded capabilities document in place
    (a reader can see it truncated). vos turns any failure of discovery into "No service with
    resource ID … found in registry", which is a permanent error. So this class makes every
    cache file cadcutils could write exist, complete and fresh before cadcutils looks:

    - the registry file (``resource-caps``) is rewritten atomically with every registered
      resource, merging (under a file lock) the lines other processes sharing a configured
      directory have written, so no process drops another's resources;
    - each resource's folder is created here, so cadcutils never creates it;
    - a capabilities document, once cadcutils has fetched it (by one thread per adapter, see
      :class:`CavernStorage`), is kept fresh by touching it, so cadcutils never downloads and
      rewrites it while another thread reads it. It is fetched again when its resource
      registers again (a new adapter or process), which is when a service may have moved.
    """

    REFRESH = 60.0  # seconds; cadcutils treats the files as stale after 600

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, str] = {}
        self._dirs: list[Path] = []
        self._written = 0.0

    def register(self, resource_id: str, capabilities_url: str, directory: Path | None) -> None:
        with self._lock:
            if directory is not None or not self._dirs:
                chosen = directory or Path(tempfile.mkdtemp(prefix="worksteps-cadc-registry-"))
                chosen.mkdir(parents=True, exist_ok=True)
                if chosen not in self._dirs:
                    self._dirs.append(chosen)
                cadc_ws.CACHE_LOCATION = str(chosen)
            self._entries[resource_id] = capabilities_url
            for folder in self._dirs:  # drop cached capabilities of an earlier registration
                _capabilities_file(folder, resource_id).unlink(missing_ok=True)
            self._write()

    def refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._written > self.REFRESH:
                self._write()

    def _write(self) -> None:
        current = Path(cadc_ws.CACHE_LOCATION)
        current.mkdir(parents=True, exist_ok=True)
        self._dirs = [d for d in self._dirs if d.is_dir()]  # earlier clients may still read them
        for folder in self._dirs:
            with open(folder / ".resource-caps.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # other processes may share the folder
                entries = _read_registry(folder / cadc_ws.REGISTRY_FILE)
                entries.update(self._entries)
                text = "".join(f"{rid} = {url}\n" for rid, url in sorted(entries.items()))
                tmp = folder / f".resource-caps.{os.getpid()}.tmp"
                tmp.write_text(text)
                os.replace(tmp, folder / cadc_ws.REGISTRY_FILE)
            for resource_id in self._entries:
                caps = _capabilities_file(folder, resource_id)
                caps.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):  # not fetched yet
                    os.utime(caps)
        self._written = time.monotonic()


def _capabilities_file(folder: Path, resource_id: str) -> Path:
    """Where cadcutils caches the capabilities of ``resource_id`` (``WsCapabilities``)."""
    parts = urlsplit(resource_id)
    return folder / parts.netloc / f".{parts.path.strip('/')}"


def _read_registry(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    found = {}
    for line in lines:
        if "=" in line and not line.startswith("#"):
            rid, url = line.split("=", 1)
            found[rid.strip()] = url.strip()
    return found


REGISTRY = CadcRegistry()
