"""Rucio's JSON shapes for rules, locks, DIDs, replicas and RSEs, as rucio-clients reads them.

Dates use Rucio's RFC 1123 form (``Mon, 01 Jan 2026 00:00:00 UTC``), which the client turns
back into datetimes; enums travel by name (``REPLICATING``, ``DATASET``, ``NO``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlparse

from worksteps.emulators.rucio.catalogue import DidInfo, RucioCatalogue
from worksteps.emulators.rucio.content import FileContent
from worksteps.emulators.rucio.rules import Lock, Rule

__all__ = [
    "date",
    "did_json",
    "did_meta_json",
    "file_json",
    "lock_json",
    "replica_json",
    "rse_id",
    "rse_json",
    "rule_json",
]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NOTIFY = {"Y": "YES", "N": "NO", "C": "CLOSE", "P": "PROGRESS"}


def date(epoch: float | None) -> str | None:
    """Rucio's date format, independent of the process locale."""
    if epoch is None:
        return None
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC"
    )


def rse_id(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"rucio-rse:{name}").hex


def rule_json(rule: Rule, now: float) -> dict[str, Any]:
    ok, replicating, stuck = rule.counters(now)
    opts = rule.options
    return {
        "id": rule.id,
        "subscription_id": None,
        "account": rule.account,
        "scope": rule.scope,
        "name": rule.name,
        "did_type": rule.did_type,
        "state": rule.state(now),
        "error": rule.error(now),
        "rse_expression": rule.rse_expression,
        "copies": rule.copies,
        "expires_at": date(rule.expires_at),
        "weight": opts.get("weight"),
        "locked": bool(opts.get("locked", False)),
        "locks_ok_cnt": ok,
        "locks_replicating_cnt": replicating,
        "locks_stuck_cnt": stuck,
        "source_replica_expression": opts.get("source_replica_expression"),
        "activity": opts.get("activity") or "User Subscriptions",
        "grouping": opts.get("grouping") or "DATASET",
        "notification": _NOTIFY.get(str(opts.get("notify") or "N"), "NO"),
        "stuck_at": date(rule.stuck_at(now)),
        "purge_replicas": bool(opts.get("purge_replicas", False)),
        "ignore_availability": bool(opts.get("ignore_availability", False)),
        "ignore_account_limit": False,
        "priority": opts.get("priority", 3),
        "comments": opts.get("comment"),
        "child_rule_id": None,
        "eol_at": None,
        "split_container": False,
        "meta": opts.get("meta"),
        "created_at": date(rule.created_at),
        "updated_at": date(rule.updated_at(now)),
    }


def lock_json(lock: Lock, rule: Rule, now: float) -> dict[str, Any]:
    return {
        "scope": lock.scope,
        "name": lock.name,
        "rse_id": rse_id(lock.rse),
        "rse": lock.rse,
        "state": lock.state(now),
        "rule_id": rule.id,
    }


def did_json(info: DidInfo, catalogue: RucioCatalogue) -> dict[str, Any]:
    is_file = info.did_type == "FILE"
    return {
        "scope": info.scope,
        "name": info.name,
        "type": info.did_type,
        "account": "root",
        "bytes": info.bytes,
        "length": None if is_file else len(info.files),
        "md5": None,
        "adler32": catalogue.adler32[info.scope, info.name] if is_file else None,
        "open": None if is_file else False,
        "monotonic": False,
        "expired_at": None,
    }


def did_meta_json(info: DidInfo, catalogue: RucioCatalogue) -> dict[str, Any]:
    base = did_json(info, catalogue)
    return {
        "scope": info.scope,
        "name": info.name,
        "account": "root",
        "did_type": info.did_type,
        "is_open": base["open"],
        "monotonic": False,
        "hidden": False,
        "obsolete": False,
        "complete": True,
        "availability": "AVAILABLE",
        "bytes": base["bytes"],
        "length": base["length"],
        "md5": None,
        "adler32": base["adler32"],
        "guid": None,
        "events": None,
        "expired_at": None,
    }


def file_json(content: FileContent, catalogue: RucioCatalogue) -> dict[str, Any]:
    return {
        "scope": content.scope,
        "name": content.name,
        "bytes": content.size,
        "adler32": catalogue.adler32[content.scope, content.name],
        "md5": None,
        "guid": None,
        "events": None,
    }


def replica_json(
    content: FileContent,
    states: dict[str, str],
    catalogue: RucioCatalogue,
    schemes: list[str] | None,
) -> dict[str, Any]:
    """One line of ``/replicas/list``: PFNs per RSE, filtered to the requested schemes."""
    pfns: dict[str, dict[str, Any]] = {}
    rses: dict[str, list[str]] = {}
    for priority, rse in enumerate(sorted(states), start=1):
        pfn = catalogue.pfn(rse, content.scope, content.name)
        if schemes and urlparse(pfn).scheme not in schemes:
            continue
        pfns[pfn] = {
            "rse": rse,
            "rse_id": rse_id(rse),
            "type": catalogue.rse(rse).rse_type,
            "volatile": False,
            "domain": "wan",
            "priority": priority,
            "client_extract": False,
        }
        rses[rse] = [pfn]
    return {
        **file_json(content, catalogue),
        "pfns": pfns,
        "rses": rses,
        "states": {rse: states[rse] for rse in rses},
    }


def rse_json(name: str, catalogue: RucioCatalogue, protocols: bool = True) -> dict[str, Any]:
    rse = catalogue.rse(name)
    data: dict[str, Any] = {
        "id": rse_id(name),
        "rse": name,
        "vo": "def",
        "rse_type": rse.rse_type,
        "deterministic": True,
        "volatile": False,
        "staging_area": False,
        "availability": 7,
        "availability_read": True,
        "availability_write": True,
        "availability_delete": True,
        "lfn2pfn_algorithm": "hash",
        "verify_checksum": True,
        "qos_class": None,
    }
    if protocols:
        url = urlparse(rse.pfn_prefix)
        data["protocols"] = [
            {
                "scheme": url.scheme,
                "hostname": url.hostname or "",
                "port": url.port or 0,
                "prefix": url.path or "/",
                "impl": "rucio.rse.protocols.posix.Default"
                if url.scheme == "file"
                else "rucio.rse.protocols.webdav.Default",
                "domains": {
                    "lan": {"read": 1, "write": 1, "delete": 1},
                    "wan": {
                        "read": 1,
                        "write": 1,
                        "delete": 1,
                        "third_party_copy_read": 1,
                        "third_party_copy_write": 1,
                    },
                },
                "extended_attributes": None,
            }
        ]
    return data
