"""The state of one emulated Rucio: DIDs, replicas, rules, and the transfer model behind them.

Transfer model. When a rule is created each of its files gets a lock per target RSE. A file
already complete there is OK at once; a file another live rule is already bringing there shares
that transfer; otherwise the fastest RSE holding a complete replica is the source and the copy
takes ``bytes / bandwidth(source, destination)``. A rule's transfers to one RSE run one after
another (they share the link), starting ``transfer_latency`` after creation. Transfers that match
a configured failure, or that have no source, end in error (the rule becomes STUCK).

Replicas are real files under each RSE's root (see :mod:`.content`); a replica whose transfer
has completed is written the first time anyone looks (:meth:`RucioCatalogue.settle`), so the
disk always agrees with what the API reports. Deleting or expiring a rule cancels its pending
transfers and keeps the replicas it completed, as Rucio does before its reaper runs.

One ``RucioCatalogue`` may back several apps served from different threads (the Rucio and
PrepareData emulators of a site), so every method holds an internal lock.
"""

from __future__ import annotations

import fnmatch
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worksteps.emulators.rucio.config import RSEConfig, RucioConfig
from worksteps.emulators.rucio.content import FileContent, deterministic_path, write_content
from worksteps.emulators.rucio.expressions import InvalidRSEExpression, resolve
from worksteps.emulators.rucio.rules import Lock, RucioError, Rule

__all__ = ["DidInfo", "RucioCatalogue"]

Key = tuple[str, str]


@dataclass(frozen=True)
class DidInfo:
    """A DID of the catalogue: a file, or a dataset of files."""

    scope: str
    name: str
    did_type: str
    files: tuple[FileContent, ...]

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


class RucioCatalogue:
    """DIDs, replicas and rules of one Rucio instance; time comes from ``clock``."""

    def __init__(self, config: RucioConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.rses: dict[str, RSEConfig] = {r.name: r for r in config.rses}
        self.files: dict[Key, FileContent] = {
            (f.scope, f.name): FileContent(f.scope, f.name, f.bytes or 0, f.source)
            for f in config.files
        }
        self.adler32: dict[Key, str] = {key: c.adler32() for key, c in self.files.items()}
        self.datasets: dict[Key, list[Key]] = {
            (d.scope, d.name): d.members() for d in config.datasets
        }
        self.replicas: set[tuple[str, str, str]] = {
            (f.scope, f.name, rse) for f in config.files for rse in f.rses
        }
        self.rules: dict[str, Rule] = {}
        self._lock = threading.RLock()
        self._load()
        for scope, name, rse in sorted(self.replicas):
            write_content(self.files[scope, name], self.replica_path(rse, scope, name))

    # -- RSEs and DIDs --------------------------------------------------------------------

    def rse(self, name: str) -> RSEConfig:
        if name not in self.rses:
            raise RucioError("RSENotFound", f"RSE '{name}' cannot be found", 404)
        return self.rses[name]

    def attributes(self, name: str) -> dict[str, str | int | float | bool]:
        rse = self.rse(name)
        return {name: True, "site": rse.site, "rse_type": rse.rse_type, **rse.attributes}

    def resolve(self, expression: str, status: int = 409) -> list[str]:
        attrs: Mapping[str, Mapping[str, str | int | float | bool]] = {
            name: self.attributes(name) for name in self.rses
        }
        try:
            return resolve(expression, attrs)
        except InvalidRSEExpression as exc:
            raise RucioError("InvalidRSEExpression", str(exc), status) from exc

    def did(self, scope: str, name: str) -> DidInfo:
        if (scope, name) in self.files:
            return DidInfo(scope, name, "FILE", (self.files[scope, name],))
        if (scope, name) in self.datasets:
            members = tuple(self.files[key] for key in self.datasets[scope, name])
            return DidInfo(scope, name, "DATASET", members)
        raise RucioError(
            "DataIdentifierNotFound", f"Data identifier '{scope}:{name}' not found", 404
        )

    def replica_path(self, rse: str, scope: str, name: str) -> Path:
        return self.rse(rse).root / deterministic_path(scope, name)

    def pfn(self, rse: str, scope: str, name: str) -> str:
        return f"{self.rse(rse).pfn_prefix}/{deterministic_path(scope, name)}"

    def bandwidth(self, source: str, destination: str) -> float:
        for link in self.config.links:
            if (link.source, link.destination) == (source, destination):
                return link.bytes_per_second
        return self.config.default_bandwidth

    def replica_states(self, scope: str, name: str, now: float) -> dict[str, str]:
        """``{rse: AVAILABLE|COPYING}`` for the file at ``now``."""
        with self._lock:
            states = {rse: "AVAILABLE" for s, n, rse in self.replicas if (s, n) == (scope, name)}
            for rule in self.rules.values():
                for lock in rule.locks:
                    if (lock.scope, lock.name) != (scope, name) or lock.rse in states:
                        continue
                    state = lock.state(now)
                    if state == "OK":
                        states[lock.rse] = "AVAILABLE"
                    elif state == "REPLICATING":
                        states.setdefault(lock.rse, "COPYING")
            return states

    def available(self, scope: str, name: str, now: float) -> set[str]:
        states = self.replica_states(scope, name, now)
        return {rse for rse, state in states.items() if state == "AVAILABLE"}

    # -- rules ----------------------------------------------------------------------------

    def add_rules(
        self,
        account: str,
        dids: list[Key],
        copies: int,
        rse_expression: str,
        lifetime: int | None = None,
        source_replica_expression: str | None = None,
        options: dict[str, Any] | None = None,
        start_at: float | None = None,
    ) -> list[str]:
        """Create one rule per DID, all or none; their ids in the order of ``dids``."""
        with self._lock:
            now = self.clock()
            start = max(now, start_at or now)
            infos = [self.did(scope, name) for scope, name in dids]
            targets = self.resolve(rse_expression)
            if copies < 1 or copies > len(targets):
                raise RucioError(
                    "InsufficientTargetRSEs",
                    f"{copies} copies requested but {rse_expression!r} has {len(targets)} RSEs",
                    409,
                )
            sources = self.resolve(source_replica_expression) if source_replica_expression else None
            for info in infos:
                self._refuse_duplicate(info, account, rse_expression, copies)
            created = []
            for info in infos:
                chosen = self._choose_rses(info, targets, copies, start)
                locks = [
                    lock for rse in chosen for lock in self._schedule(info, rse, start, sources)
                ]
                rule = Rule(
                    id=uuid.uuid4().hex,
                    account=account,
                    scope=info.scope,
                    name=info.name,
                    did_type=info.did_type,
                    rse_expression=rse_expression,
                    copies=copies,
                    created_at=now,
                    locks=locks,
                    expires_at=now + lifetime if lifetime else None,
                    options={
                        **(options or {}),
                        "source_replica_expression": source_replica_expression,
                    },
                )
                self.rules[rule.id] = rule
                created.append(rule.id)
            self._save()
            return created

    def rule(self, rule_id: str) -> Rule:
        with self._lock:
            if rule_id not in self.rules:
                raise RucioError("RuleNotFound", f"No rule with the id {rule_id} found", 404)
            return self.rules[rule_id]

    def rules_for(self, scope: str, name: str) -> list[Rule]:
        with self._lock:
            self.did(scope, name)
            return [r for r in self.rules.values() if (r.scope, r.name) == (scope, name)]

    def find_lock(self, account: str, scope: str, name: str, rse: str) -> Lock | None:
        """The lock an ``account``'s live rule holds on the file at ``rse``, if any."""
        with self._lock:
            for rule in self.rules.values():
                if rule.account != account:
                    continue
                for lock in rule.locks:
                    if (lock.scope, lock.name, lock.rse) == (scope, name, rse):
                        return lock
            return None

    def delete_rule(self, rule_id: str) -> None:
        with self._lock:
            self._retire(self.rule(rule_id), self.clock())
            self._save()

    def settle(self) -> float:
        """Expire rules and write every replica completed by now; returns the time used."""
        with self._lock:
            now = self.clock()
            expired = [r for r in self.rules.values() if r.expires_at and r.expires_at <= now]
            for rule in expired:
                self._retire(rule, now)
            if expired:
                self._save()
            due = sorted(
                {
                    (lock.done_at, lock.scope, lock.name, lock.rse)
                    for rule in self.rules.values()
                    for lock in rule.locks
                    if lock.state(now) == "OK"
                }
            )
        for _, scope, name, rse in due:
            write_content(self.files[scope, name], self.replica_path(rse, scope, name))
        return now

    # -- internals ------------------------------------------------------------------------

    def _refuse_duplicate(
        self, info: DidInfo, account: str, rse_expression: str, copies: int
    ) -> None:
        """Rucio keeps one rule per (DID, account, rse_expression, copies)."""
        wanted = (info.scope, info.name, account, rse_expression, copies)
        for rule in self.rules.values():
            if (rule.scope, rule.name, rule.account, rule.rse_expression, rule.copies) == wanted:
                raise RucioError(
                    "DuplicateRule",
                    f"A duplicate rule for this account, did, rse_expression, copies already "
                    f"exists: {rule.id}",
                    409,
                )

    def _choose_rses(self, info: DidInfo, targets: list[str], copies: int, at: float) -> list[str]:
        """Prefer RSEs that already hold most of the data (fewest bytes to move), then name."""

        def missing(rse: str) -> int:
            return sum(f.size for f in info.files if rse not in self.available(f.scope, f.name, at))

        return sorted(targets, key=lambda rse: (missing(rse), rse))[:copies]

    def _schedule(
        self, info: DidInfo, rse: str, start: float, allowed: list[str] | None
    ) -> list[Lock]:
        locks = []
        cursor = start + self.config.transfer_latency
        for content in sorted(info.files, key=lambda f: (f.scope, f.name)):
            scope, name, size = content.scope, content.name, content.size
            have = self.available(scope, name, start)
            if rse in have:
                locks.append(Lock(scope, name, rse, size, done_at=start))
                continue
            shared = self._transfer_in_flight(scope, name, rse, start)
            if shared is not None:
                locks.append(
                    Lock(scope, name, rse, size, shared.done_at, shared.source, shared.error)
                )
                continue
            candidates = sorted(have if allowed is None else have & set(allowed))
            if not candidates:
                missing = f"No source replica of {scope}:{name} available for {rse}"
                locks.append(Lock(scope, name, rse, size, done_at=cursor, error=missing))
                continue
            source = min(candidates, key=lambda s: (-self.bandwidth(s, rse), s))
            cursor += size / self.bandwidth(source, rse)
            error = self._injected_failure(scope, name, source, rse)
            locks.append(Lock(scope, name, rse, size, done_at=cursor, source=source, error=error))
        return locks

    def _transfer_in_flight(self, scope: str, name: str, rse: str, at: float) -> Lock | None:
        for rule in self.rules.values():
            for lock in rule.locks:
                if (lock.scope, lock.name, lock.rse) == (scope, name, rse) and lock.done_at > at:
                    return lock
        return None

    def _injected_failure(self, scope: str, name: str, source: str, rse: str) -> str | None:
        for failure in self.config.failures:
            if failure.did is not None and not fnmatch.fnmatchcase(f"{scope}:{name}", failure.did):
                continue
            if failure.source not in (None, source) or failure.destination not in (None, rse):
                continue
            return failure.message
        return None

    def _retire(self, rule: Rule, now: float) -> None:
        for lock in rule.locks:
            if lock.state(now) == "OK":
                self.replicas.add((lock.scope, lock.name, lock.rse))
        del self.rules[rule.id]

    def _load(self) -> None:
        """Rules and replicas of an earlier run, minus what the configuration no longer has."""
        path = self.config.state_file
        if path is None or not path.exists():
            return
        data = json.loads(path.read_text())
        self.replicas |= {
            (s, n, r) for s, n, r in data["replicas"] if (s, n) in self.files and r in self.rses
        }
        for item in data["rules"]:
            rule = Rule.from_json(item)
            if all((k.scope, k.name) in self.files and k.rse in self.rses for k in rule.locks):
                self.rules[rule.id] = rule

    def _save(self) -> None:
        path = self.config.state_file
        if path is None:
            return
        data = {
            "replicas": sorted(self.replicas),
            "rules": [rule.to_json() for rule in self.rules.values()],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
