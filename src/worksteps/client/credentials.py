"""A signed-in user's tokens, one entry per gateway, in a file only its owner can read."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["CredentialStore", "Credentials", "default_path"]


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "worksteps" / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    """The access token for ``gateway`` and when it expires (epoch seconds; 0: unknown)."""

    gateway: str
    access_token: str
    expires_at: float = 0.0
    subject: str = ""

    @property
    def expired(self) -> bool:
        return bool(self.expires_at) and time.time() >= self.expires_at - 10


class CredentialStore:
    """Reads and writes the credentials file atomically, with mode 0600."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    def _all(self) -> dict[str, dict[str, object]]:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the credentials in {self.path}: {exc}") from None
        return loaded if isinstance(loaded, dict) else {}

    def get(self, gateway: str) -> Credentials | None:
        entry = self._all().get(gateway.rstrip("/"))
        if not isinstance(entry, dict):
            return None
        try:
            return Credentials(
                gateway=gateway.rstrip("/"),
                access_token=str(entry["access_token"]),
                expires_at=float(str(entry.get("expires_at", 0))),
                subject=str(entry.get("subject", "")),
            )
        except (KeyError, ValueError):
            return None

    def put(self, credentials: Credentials) -> None:
        entries = self._all()
        record = asdict(credentials)
        record.pop("gateway")
        entries[credentials.gateway.rstrip("/")] = record
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(entries, out, indent=2)
        os.replace(partial, self.path)

    def forget(self, gateway: str) -> bool:
        entries = self._all()
        if entries.pop(gateway.rstrip("/"), None) is None:
            return False
        self.path.write_text(json.dumps(entries, indent=2), encoding="utf-8")
        return True
