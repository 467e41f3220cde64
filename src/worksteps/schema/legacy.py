"""Rewrite every legacy generation of ExecutionBroker documents into the current shape.

Applied to decoded documents before model validation; a current document passes unchanged.
What it rewrites (see ``shared/reference/executionbroker.md`` §2 "Legacy shapes"):

- kind URIs of every generation -> the current URI (:func:`kinds.canonical_kind`); ``type`` used
  as the discriminator -> ``kind`` (only when it holds a kind URI or an ``uri:`` update kind);
- flat metadata (``uuid``, ``name``, ``created``, ``href``, component ``description``) -> ``meta``;
- ``computer`` -> ``compute``; ``{update: {...}}`` wrappers -> the update itself;
- the 2025-11 top-level ``volumes[]`` (``cardinality``, ``resources[]``) referenced by name from
  ``compute.volumes`` -> one ``compute.volumes`` mount per resource (a volume of several resources
  mounts each under ``<path>/<resource>``); without ``compute.volumes`` every top-level volume is
  mounted (the 2025-05 shape had no such list);
- storage ``resources`` -> ``data``; response ``schedule.offered`` -> ``schedule``.

A kind URI that matches no generation is left as it is, so validation reports it by name.
"""

from __future__ import annotations

from typing import Any

from worksteps.schema.kinds import VOLUME_SIMPLE, canonical_kind

__all__ = ["normalize_request", "normalize_session", "normalize_update"]

_META_KEYS = ("uuid", "name", "created", "modified", "href", "url", "messages", "options")
_COMPONENT_KEYS = ("executable", "compute", "volumes")
_COMPONENT_LISTS = ("storage", "data", "volumes", "offers")


def _kind_of(doc: dict[str, Any]) -> None:
    """Fold a legacy ``type`` discriminator into ``kind`` and canonicalise the URI."""
    if "kind" not in doc and isinstance(doc.get("type"), str):
        value = doc["type"]
        if value.startswith(("http://", "https://", "uri:")):
            doc["kind"] = doc.pop("type")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.startswith(("http://", "https://")):
        doc["kind"] = canonical_kind(kind) or kind


def _meta_of(doc: dict[str, Any], description_is_meta: bool) -> None:
    """Move flat metadata keys into ``meta``."""
    flat = [k for k in _META_KEYS if k in doc]
    if description_is_meta and "description" in doc:
        flat.append("description")
    if not flat:
        return
    meta = doc.setdefault("meta", {})
    if not isinstance(meta, dict):
        return
    for key in flat:
        value = doc.pop(key)
        meta.setdefault("url" if key == "href" else key, value)


def _component(doc: Any) -> Any:
    if not isinstance(doc, dict):
        return doc
    doc = dict(doc)
    _kind_of(doc)
    _meta_of(doc, description_is_meta=True)
    schedule = doc.get("schedule")
    if isinstance(schedule, dict) and isinstance(schedule.get("offered"), dict):
        doc["schedule"] = schedule["offered"]
    if "resources" in doc and "data" not in doc and "storage" in str(doc.get("kind", "")):
        doc["data"] = doc.pop("resources")
    for key in ("costs", "metrics"):
        if isinstance(doc.get(key), list):
            doc[key] = [_cost(item) for item in doc[key]]
    return doc


def _cost(item: Any) -> Any:
    if isinstance(item, dict):
        item = dict(item)
        kind = item.get("kind")
        if isinstance(kind, str):
            item["kind"] = canonical_kind(kind) or kind
    return item


def _volume_mounts(volume: dict[str, Any]) -> list[dict[str, Any]]:
    """One current mount per resource of a 2025-11 top-level volume."""
    resources = volume.get("resources")
    base = {k: v for k, v in volume.items() if k not in ("resources", "cardinality")}
    if not isinstance(resources, list) or not resources:
        return [base]
    if len(resources) == 1:
        return [{**base, "resource": resources[0]}]
    path = str(base.get("path", "")).rstrip("/")
    mounts = []
    for res in resources:
        mount = {**base, "resource": res, "path": f"{path}/{res}"}
        if isinstance(mount.get("meta"), dict) and mount["meta"].get("name"):
            mount["meta"] = {**mount["meta"], "name": f"{mount['meta']['name']}:{res}"}
        mounts.append(mount)
    return mounts


def _attach_volumes(doc: dict[str, Any]) -> None:
    top = doc.pop("volumes", None)
    compute = doc.get("compute")
    if not isinstance(top, list) or not isinstance(compute, dict):
        if isinstance(top, list):
            doc["volumes"] = top  # nothing to attach to: let validation name the field
        return
    volumes = [_component(v) for v in top]
    named = {
        str(v.get("meta", {}).get("name")): v
        for v in volumes
        if isinstance(v, dict) and isinstance(v.get("meta"), dict)
    }
    wanted = compute.get("volumes")
    chosen: list[Any]
    if isinstance(wanted, list) and all(isinstance(w, str) for w in wanted):
        chosen = [named.get(w, {"kind": VOLUME_SIMPLE, "meta": {"name": w}}) for w in wanted]
    elif wanted is None:
        chosen = volumes
    else:
        chosen = list(wanted) + volumes
    mounts: list[Any] = []
    for volume in chosen:
        mounts.extend(_volume_mounts(volume) if isinstance(volume, dict) else [volume])
    compute["volumes"] = mounts


def _components(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    if "computer" in doc and "compute" not in doc:
        doc["compute"] = doc.pop("computer")
    for key in _COMPONENT_KEYS:
        if key in doc and not isinstance(doc[key], list):
            doc[key] = _component(doc[key])
    for key in _COMPONENT_LISTS:
        if isinstance(doc.get(key), list):
            doc[key] = [_component(item) for item in doc[key]]
    compute = doc.get("compute")
    if isinstance(compute, dict) and isinstance(compute.get("volumes"), list):
        compute["volumes"] = [
            _component(v) if isinstance(v, dict) else v for v in compute["volumes"]
        ]
    _attach_volumes(doc)
    return doc


def normalize_request(doc: dict[str, Any]) -> dict[str, Any]:
    """An execution request in any generation, in the current shape."""
    doc = _components(doc)
    if "name" in doc or "description" in doc:
        _meta_of(doc, description_is_meta=True)
    for key in ("costs", "metrics"):
        if isinstance(doc.get(key), list):
            doc[key] = [_cost(item) for item in doc[key]]
    return doc


def normalize_session(doc: dict[str, Any]) -> dict[str, Any]:
    """A session or offer set (a captured response) in any generation, in the current shape."""
    doc = _component(doc)
    doc = _components(doc)
    if isinstance(doc.get("offers"), list):
        doc["offers"] = [normalize_session(o) for o in doc["offers"] if isinstance(o, dict)]
    return doc


def normalize_update(doc: dict[str, Any]) -> dict[str, Any]:
    """A session update, unwrapping the 2025 ``{update: {type|kind, path, value}}`` shape."""
    inner = doc.get("update")
    if isinstance(inner, dict) and set(doc) == {"update"}:
        doc = inner
    doc = dict(doc)
    if "kind" not in doc and isinstance(doc.get("type"), str):
        doc["kind"] = doc.pop("type")
    return doc
