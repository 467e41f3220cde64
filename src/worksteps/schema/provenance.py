"""Worksteps' W3C PROV-JSON record of one session: written when it ends, read to re-create it.

The execution service calls :func:`build_provenance` when a session ends; the editor calls
:func:`read_provenance` to turn such a record back into an :class:`ExecutionRequest`. The record
(PROV-JSON, https://www.w3.org/submissions/prov-json/) looks like this, where ``run`` is the
session URL followed by ``#``::

    activity  run:session    prov:type worksteps:Session, prov:startTime, prov:endTime,
                             worksteps:phase, worksteps:session (URL), worksteps:site,
                             worksteps:broker, and as rdf:JSON literals worksteps:request,
                             worksteps:executable, worksteps:compute, worksteps:data,
                             worksteps:storage, worksteps:offer (the accepted offer's resources)
    entity    run:workstep   prov:type worksteps:Workstep (uuid, version, name): the plan
              run:data-N     prov:type worksteps:Data, prov:location, worksteps:resource (JSON)
              run:output-N   prov:type worksteps:Output, prov:location
    agent     run:site       prov:type prov:Organization, prov:label (site), worksteps:broker
              run:owner      prov:type prov:Person (when the owner is given)
    used / wasGeneratedBy / wasAssociatedWith (site, plan = the workstep) / actedOnBehalfOf

Invariants: ``read_provenance(build_provenance(...))`` gives back the request exactly (the JSON
literals are authoritative). Attribute names are compared as expanded IRIs, so a record that
binds the Worksteps namespace to another prefix reads the same. A record from another PROV
producer is read as far as it can be: the one activity (or the one named), the locations of the
entities it used and generated, and its software agents or plan; anything else unreadable is a
:class:`ProvenanceError` naming the place in the document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.isotime import IsoTimeError, format_instant, parse_instant
from worksteps.schema.legacy import normalize_request
from worksteps.schema.prov_json import (
    PROV,
    RDF,
    XSD,
    ProvenanceError,
    QualifiedNames,
    relations,
    section,
    text,
)
from worksteps.schema.resources import (
    IvoaDataResource,
    RucioDataResource,
    S3DataResource,
    SimpleDataResource,
    SkaoDataResource,
)

__all__ = [
    "PROV",
    "WORKSTEPS",
    "ProvenanceError",
    "ProvenanceRecord",
    "WorkstepRef",
    "build_provenance",
    "data_location",
    "read_provenance",
]

WORKSTEPS: Final = "https://worksteps.example.org/ns/prov#"
_RESOURCES: Final = ("executable", "compute", "data", "storage")


class WorkstepRef(BaseModel):
    """Which version of which workstep a session ran."""

    model_config = ConfigDict(frozen=True)
    uuid: UUID
    version: int = Field(ge=1)
    name: str | None = None


class ProvenanceRecord(BaseModel):
    """What a provenance record says about one activity (a session)."""

    model_config = ConfigDict(frozen=True)
    activity: str = Field(description="The activity's identifier in the record.")
    request: ExecutionRequest = Field(description="What was run (empty parts when unknown).")
    session: str | None = None
    workstep: WorkstepRef | None = None
    site: str | None = None
    broker: str | None = None
    offer: dict[str, Any] | None = None
    phase: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    inputs: list[str] = Field(default_factory=list, description="Locations of the data used.")
    outputs: list[str] = Field(default_factory=list, description="Locations of the outputs.")
    software: list[str] = Field(
        default_factory=list, description="Locations or labels of associated software / plans."
    )


# --- writing ---------------------------------------------------------------------------------


def _json_literal(value: Any) -> dict[str, str]:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return {"$": text, "type": "rdf:JSON"}


def _qname(value: str) -> dict[str, str]:
    return {"$": value, "type": "prov:QUALIFIED_NAME"}


def _dump(value: BaseModel | Mapping[str, Any]) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    return json.loads(json.dumps(dict(value)))


def data_location(resource: Any) -> str | None:
    """Where a data resource's bytes are: a URL, a Rucio DID, an ivoid; None when unknown."""
    if isinstance(resource, SimpleDataResource):
        return resource.location
    if isinstance(resource, RucioDataResource) and resource.rucio is not None:
        block = resource.rucio
        return f"{block.scope}:{block.object}" if block.scope and block.object else None
    if isinstance(resource, SkaoDataResource) and resource.skao is not None:
        block2 = resource.skao
        if block2.namespace and block2.objectname:
            return f"{block2.namespace}:{block2.objectname}"
    if isinstance(resource, IvoaDataResource | SkaoDataResource) and resource.ivoa is not None:
        ivoa = resource.ivoa
        for candidate in (
            ivoa.ivoid,
            ivoa.datalink.access_url if ivoa.datalink else None,
            ivoa.obscore.access_url if ivoa.obscore else None,
        ):
            if candidate:
                return candidate
    if isinstance(resource, S3DataResource) and resource.bucket:
        return f"s3://{resource.bucket}/{resource.object or ''}"
    return None


def build_provenance(
    *,
    session: str,
    request: ExecutionRequest,
    site: str,
    broker: str,
    phase: str,
    started: datetime | None = None,
    ended: datetime | None = None,
    outputs: Sequence[str] = (),
    workstep: WorkstepRef | Mapping[str, Any] | None = None,
    offer: BaseModel | Mapping[str, Any] | None = None,
    owner: str | None = None,
) -> dict[str, Any]:
    """The PROV-JSON record of one session (a JSON-like dict, ready for ``json.dumps``).

    ``session`` is the session's URL (or its id), ``offer`` the accepted offer or just its
    resources, ``outputs`` the URIs of what the session produced. Raises ValueError for an
    empty session, site or output, or an end before the start.
    """
    if not session.strip() or not site.strip():
        raise ValueError("session and site must not be empty")
    if started is not None and ended is not None and ended < started:
        raise ValueError("the session cannot end before it started")
    if any(not str(o).strip() for o in outputs):
        raise ValueError("an output URI is empty")
    ref = WorkstepRef.model_validate(workstep) if workstep is not None else None
    namespace = session if "://" in session else f"urn:worksteps:session:{session}"
    act = "run:session"
    body = request.model_dump(mode="json", exclude_none=True)
    attributes: dict[str, Any] = {
        "prov:type": _qname("worksteps:Session"),
        "worksteps:session": session,
        "worksteps:site": site,
        "worksteps:broker": broker,
        "worksteps:phase": str(phase),
        "worksteps:request": _json_literal(body),
    }
    for part in _RESOURCES:
        if part in body:
            attributes[f"worksteps:{part}"] = _json_literal(body[part])
    if offer is not None:
        attributes["worksteps:offer"] = _json_literal(_dump(offer))
    if started is not None:
        attributes["prov:startTime"] = format_instant(started)
    if ended is not None:
        attributes["prov:endTime"] = format_instant(ended)

    entities: dict[str, Any] = {}
    used: dict[str, Any] = {}
    generated: dict[str, Any] = {}
    for index, resource in enumerate(request.data or []):
        entity = f"run:data-{index}"
        entities[entity] = {
            "prov:type": _qname("worksteps:Data"),
            "worksteps:resource": _json_literal(
                resource.model_dump(mode="json", exclude_none=True)
            ),
        }
        if location := data_location(resource):
            entities[entity]["prov:location"] = location
        used[f"_:used-{index}"] = {"prov:activity": act, "prov:entity": entity}
        if started is not None:
            used[f"_:used-{index}"]["prov:time"] = format_instant(started)
    for index, uri in enumerate(outputs):
        entity = f"run:output-{index}"
        entities[entity] = {"prov:type": _qname("worksteps:Output"), "prov:location": str(uri)}
        generated[f"_:gen-{index}"] = {"prov:entity": entity, "prov:activity": act}
        if ended is not None:
            generated[f"_:gen-{index}"]["prov:time"] = format_instant(ended)
    association: dict[str, Any] = {"prov:activity": act, "prov:agent": "run:site"}
    if ref is not None:
        entities["run:workstep"] = {
            "prov:type": [_qname("worksteps:Workstep"), _qname("prov:Plan")],
            "worksteps:uuid": str(ref.uuid),
            "worksteps:version": ref.version,
        }
        if ref.name is not None:
            entities["run:workstep"]["prov:label"] = ref.name
        association["prov:plan"] = "run:workstep"
    agents: dict[str, Any] = {
        "run:site": {
            "prov:type": _qname("prov:Organization"),
            "prov:label": site,
            "worksteps:broker": broker,
        }
    }
    document: dict[str, Any] = {
        "prefix": {"worksteps": WORKSTEPS, "run": namespace + "#", "rdf": RDF, "xsd": XSD},
        "entity": entities,
        "activity": {act: attributes},
        "agent": agents,
        "wasAssociatedWith": {"_:assoc-site": association},
    }
    if owner:
        agents["run:owner"] = {"prov:type": _qname("prov:Person"), "prov:label": owner}
        document["wasAssociatedWith"]["_:assoc-owner"] = {
            "prov:activity": act,
            "prov:agent": "run:owner",
        }
        document["actedOnBehalfOf"] = {
            "_:delegation": {
                "prov:delegate": "run:site",
                "prov:responsible": "run:owner",
                "prov:activity": act,
            }
        }
    if used:
        document["used"] = used
    if generated:
        document["wasGeneratedBy"] = generated
    return document


# --- reading ---------------------------------------------------------------------------------


def _instant(attributes: Mapping[str, Any], name: str, where: str) -> datetime | None:
    written = text(attributes, name)
    try:
        return parse_instant(written) if written else None
    except IsoTimeError as exc:
        raise ProvenanceError(str(exc), f"{where}.prov:{name.removeprefix(PROV)}") from exc


def _choose_activity(
    activities: dict[str, Any], names: QualifiedNames, wanted: str | None
) -> tuple[str, dict[str, Any]]:
    read = {key: names.attributes(node, f"activity.{key}") for key, node in activities.items()}
    if wanted is not None:
        for key, attributes in read.items():
            if wanted in (key, names.expand(key)):
                return key, attributes
        raise ProvenanceError(f"the record has no activity {wanted!r}", "activity")
    sessions = [k for k, a in read.items() if WORKSTEPS + "Session" in names.types(a)]
    if len(sessions) == 1:
        return sessions[0], read[sessions[0]]
    candidates = sessions or list(read)
    if len(candidates) == 1:
        return candidates[0], read[candidates[0]]
    if not candidates:
        raise ProvenanceError("the record names no activity", "activity")
    raise ProvenanceError(
        f"the record names {len(candidates)} activities; choose one of {sorted(candidates)[:10]}"
        " (e.g. as the URL's #fragment)",
        "activity",
    )


def _request(attributes: dict[str, Any], where: str) -> ExecutionRequest:
    body = attributes.get(WORKSTEPS + "request", {})
    if not isinstance(body, Mapping):
        raise ProvenanceError("must be a JSON object", f"{where}.worksteps:request")
    body = dict(body)
    for part in _RESOURCES:
        if WORKSTEPS + part in attributes:
            body[part] = attributes[WORKSTEPS + part]
    try:
        return ExecutionRequest.model_validate(normalize_request(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise ProvenanceError(f"{path}: {first['msg']}", f"{where}.worksteps:request") from exc


def read_provenance(doc: Any, *, activity: str | None = None) -> ProvenanceRecord:
    """Read a PROV-JSON record (ours or another producer's) about one activity.

    ``activity`` chooses the activity by id when the record names several. Raises
    :class:`ProvenanceError` when ``doc`` is not PROV-JSON or its Worksteps parts do not parse.
    """
    if not isinstance(doc, Mapping):
        raise ProvenanceError("a PROV-JSON record is a JSON object")
    if "activity" not in doc and isinstance(doc.get("bundle"), Mapping):
        bundles = list(doc["bundle"].values())
        if len(bundles) == 1 and isinstance(bundles[0], Mapping):
            inner = dict(bundles[0])
            inner["prefix"] = {**section(doc, "prefix"), **section(inner, "prefix")}
            doc = inner
    activities = section(doc, "activity")
    if not activities:
        raise ProvenanceError("the record names no activity (is this PROV-JSON?)", "activity")
    names = QualifiedNames(doc.get("prefix"))
    key, attributes = _choose_activity(activities, names, activity)
    where, act = f"activity.{key}", names.expand(key)
    entities = {names.expand(k): (k, v) for k, v in section(doc, "entity").items()}
    agents = {names.expand(k): (k, v) for k, v in section(doc, "agent").items()}

    def node(table: dict[str, tuple[str, Any]], ref: Any, section: str) -> dict[str, Any]:
        if not isinstance(ref, str) or names.expand(ref) not in table:
            return {}
        raw_key, raw = table[names.expand(ref)]
        return names.attributes(raw, f"{section}.{raw_key}")

    def locate(ref: Any) -> str | None:
        found = text(node(entities, ref, "entity"), PROV + "location")
        expanded = names.expand(ref) if isinstance(ref, str) else ""
        return found or (expanded if "://" in expanded else None)

    def linked(relation: str, field: str) -> list[tuple[Any, dict[str, Any]]]:
        """(the related thing, the relation) for every relation of this activity."""
        out = []
        for place, item in relations(doc, relation):
            rel = names.attributes(item, place)
            mine = rel.get(PROV + "activity")
            if isinstance(mine, str) and names.expand(mine) == act and rel.get(PROV + field):
                out.append((rel[PROV + field], rel))
        return out

    inputs = [loc for ref, _ in linked("used", "entity") if (loc := locate(ref))]
    outputs = [loc for ref, _ in linked("wasGeneratedBy", "entity") if (loc := locate(ref))]
    workstep: WorkstepRef | None = None
    software: list[str] = []
    site = text(attributes, WORKSTEPS + "site")
    for agent_ref, rel in linked("wasAssociatedWith", "agent"):
        agent = node(agents, agent_ref, "agent")
        kinds = names.types(agent)
        label = text(agent, PROV + "location") or text(agent, PROV + "label")
        if PROV + "SoftwareAgent" in kinds and label:
            software.append(label)
        if PROV + "Organization" in kinds and site is None:
            site = text(agent, PROV + "label")
        plan = node(entities, rel.get(PROV + "plan"), "entity")
        if WORKSTEPS + "uuid" in plan:
            try:
                workstep = WorkstepRef(
                    uuid=plan[WORKSTEPS + "uuid"],
                    version=plan.get(WORKSTEPS + "version"),
                    name=text(plan, PROV + "label"),
                )
            except ValidationError as exc:
                raise ProvenanceError("the workstep reference is not valid", "entity") from exc
        elif plan and (label := text(plan, PROV + "location") or text(plan, PROV + "label")):
            software.append(label)
    offer = attributes.get(WORKSTEPS + "offer")
    if offer is not None and not isinstance(offer, Mapping):
        raise ProvenanceError("must be a JSON object", f"{where}.worksteps:offer")
    return ProvenanceRecord(
        activity=key,
        request=_request(attributes, where),
        session=text(attributes, WORKSTEPS + "session"),
        workstep=workstep,
        site=site,
        broker=text(attributes, WORKSTEPS + "broker"),
        offer=dict(offer) if offer is not None else None,
        phase=text(attributes, WORKSTEPS + "phase"),
        started=_instant(attributes, PROV + "startTime", where),
        ended=_instant(attributes, PROV + "endTime", where),
        inputs=inputs,
        outputs=outputs,
        software=software,
    )
