"""The PROV-JSON record of a session: written, read back exactly, other producers, bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worksteps.schema import ExecutionRequest, kinds
from worksteps.schema.provenance import (
    WORKSTEPS,
    ProvenanceError,
    WorkstepRef,
    build_provenance,
    read_provenance,
)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=2, seconds=7)
WORKSTEP = WorkstepRef(uuid=UUID("0b9f6a52-8c1e-4c55-9d1f-2d5b8e3f6a01"), version=3, name="fits")

REQUEST = ExecutionRequest.model_validate(
    {
        "meta": {"name": "look at a cube"},
        "executable": {
            "kind": kinds.EXEC_DOCKER,
            "meta": {"name": "terminal"},
            "image": {"locations": ["images.example.org/skaha/terminal:1.1.2"]},
            "command": ["python", "/arc/home/alice/run.py"],
        },
        "compute": {
            "kind": kinds.COMPUTE_SIMPLE,
            "cores": {"min": 2, "max": 4},
            "memory": {"min": 4, "max": 8, "units": "GiB"},
            "volumes": [
                {
                    "kind": kinds.VOLUME_SIMPLE,
                    "path": "/data/in",
                    "mode": "READONLY",
                    "resource": "cube",
                }
            ],
        },
        "storage": [
            {"kind": kinds.STORAGE_SIMPLE, "meta": {"name": "scratch"}, "size": {"min": 10}}
        ],
        "data": [
            {
                "kind": kinds.DATA_RUCIO,
                "meta": {"name": "cube"},
                "storage": "scratch",
                "rucio": {"scope": "demo", "object": "cube-0003.fits", "type": "FILE"},
            },
            {"kind": kinds.DATA_SIMPLE, "location": "https://example.org/psf.fits"},
            {"kind": kinds.DATA_IVOA, "ivoa": {"ivoid": "ivo://example.org/obs?42"}},
        ],
        "schedule": {"requested": {"duration": "PT2H"}},
    }
)
OFFER = {"compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 4, "max": 4}}}
OUTPUTS = ["vos://example.org~cavern/home/alice/out/result.fits", "https://example.org/log.txt"]


def _record(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "session": "http://127.0.0.1:8001/executions/e-17",
        "request": REQUEST,
        "site": "site-a",
        "broker": "http://127.0.0.1:9001",
        "phase": "COMPLETED",
        "started": START,
        "ended": END,
        "outputs": OUTPUTS,
        "workstep": WORKSTEP,
        "offer": OFFER,
        "owner": "alice",
    }
    arguments.update(changes)
    return build_provenance(**arguments)


def test_a_record_reads_back_exactly() -> None:
    document = json.loads(json.dumps(_record()))  # what travels is plain JSON
    record = read_provenance(document)
    assert record.request == REQUEST
    assert record.session == "http://127.0.0.1:8001/executions/e-17"
    assert (record.site, record.broker, record.phase) == (
        "site-a",
        "http://127.0.0.1:9001",
        "COMPLETED",
    )
    assert (record.started, record.ended) == (START, END)
    assert record.workstep == WORKSTEP
    assert record.offer == OFFER
    assert record.outputs == OUTPUTS
    assert record.inputs == [
        "demo:cube-0003.fits",
        "https://example.org/psf.fits",
        "ivo://example.org/obs?42",
    ]


def test_the_record_is_w3c_prov_json() -> None:
    document = _record()
    assert set(document) >= {
        "prefix",
        "entity",
        "activity",
        "agent",
        "used",
        "wasGeneratedBy",
        "wasAssociatedWith",
    }
    (activity,) = document["activity"].values()
    assert activity["prov:type"] == {"$": "worksteps:Session", "type": "prov:QUALIFIED_NAME"}
    assert activity["prov:startTime"] == "2025-03-01T12:00:00Z"
    compute = activity["worksteps:compute"]
    assert compute["type"] == "rdf:JSON"
    assert json.loads(compute["$"])["cores"] == {"min": 2, "max": 4}
    assert document["prefix"]["worksteps"] == WORKSTEPS
    assert document["prefix"]["run"] == "http://127.0.0.1:8001/executions/e-17#"
    # every relation points at things the record defines
    for relation in document["used"].values():
        assert relation["prov:entity"] in document["entity"]
        assert relation["prov:activity"] in document["activity"]
    for relation in document["wasGeneratedBy"].values():
        assert relation["prov:entity"] in document["entity"]
    locations = [e.get("prov:location") for e in document["entity"].values()]
    assert OUTPUTS[0] in locations


def test_minimal_arguments_and_a_session_id() -> None:
    record = read_provenance(
        build_provenance(
            session="e-17",
            request=ExecutionRequest(),
            site="site-b",
            broker="http://b",
            phase="FAILED",
        )
    )
    assert record.request == ExecutionRequest()
    assert record.workstep is None and record.offer is None and record.started is None
    assert record.outputs == [] and record.inputs == []
    assert record.phase == "FAILED"


def test_another_prefix_for_the_worksteps_namespace_reads_the_same() -> None:
    text = json.dumps(_record()).replace('"worksteps:', '"ws:').replace('"worksteps"', '"ws"')
    assert "worksteps:" not in text
    record = read_provenance(json.loads(text))
    assert record.request == REQUEST
    assert record.workstep == WORKSTEP


def test_a_bundle_holding_the_record() -> None:
    inner = _record()
    prefixes = inner.pop("prefix")
    record = read_provenance({"prefix": prefixes, "bundle": {"run:b": inner}})
    assert record.request == REQUEST


FOREIGN: dict[str, Any] = {
    "prefix": {"ex": "http://example.org/", "tool": "http://tools.example.org/"},
    "entity": {
        "ex:raw": {"prov:location": "demo:obs-0001.ms.tar"},
        "ex:calibrated": {"prov:label": "calibrated visibilities"},
        "ex:image": {"prov:location": "https://example.org/image.fits"},
    },
    "activity": {
        "ex:clean": {
            "prov:startTime": "2024-11-02T10:00:00+01:00",
            "prov:endTime": "2024-11-02T11:00:00",
        }
    },
    "agent": {
        "tool:wsclean": {
            "prov:type": {"$": "prov:SoftwareAgent", "type": "prov:QUALIFIED_NAME"},
            "prov:location": "docker.io/library/wsclean:3.4",
        }
    },
    "used": {
        "_:u1": {"prov:activity": "ex:clean", "prov:entity": "ex:raw"},
        "_:u2": {"prov:activity": "ex:clean", "prov:entity": "ex:calibrated"},
    },
    "wasGeneratedBy": {"_:g1": [{"prov:activity": "ex:clean", "prov:entity": "ex:image"}]},
    "wasAssociatedWith": {"_:a1": {"prov:activity": "ex:clean", "prov:agent": "tool:wsclean"}},
}


def test_another_producers_record_gives_what_it_can() -> None:
    record = read_provenance(FOREIGN)
    assert record.activity == "ex:clean"
    assert record.request == ExecutionRequest()
    # an entity without a location is named by its IRI
    assert record.inputs == ["demo:obs-0001.ms.tar", "http://example.org/calibrated"]
    assert record.outputs == ["https://example.org/image.fits"]
    assert record.software == ["docker.io/library/wsclean:3.4"]
    assert record.started == datetime(2024, 11, 2, 9, 0, tzinfo=UTC)
    assert record.ended == datetime(2024, 11, 2, 11, 0, tzinfo=UTC)


def test_several_activities_need_a_choice() -> None:
    document = json.loads(json.dumps(FOREIGN))
    document["activity"]["ex:publish"] = {}
    with pytest.raises(ProvenanceError, match="2 activities") as info:
        read_provenance(document)
    assert info.value.where == "activity"
    assert read_provenance(document, activity="ex:clean").outputs == [
        "https://example.org/image.fits"
    ]
    assert read_provenance(document, activity="http://example.org/publish").outputs == []
    with pytest.raises(ProvenanceError, match="no activity 'ex:nothing'"):
        read_provenance(document, activity="ex:nothing")


def test_our_session_is_found_among_other_activities() -> None:
    document = _record()
    document["activity"]["run:archive"] = {"prov:label": "archived later"}
    assert read_provenance(document).request == REQUEST


def _activity(document: dict[str, Any]) -> dict[str, Any]:
    (activity,) = document["activity"].values()
    assert isinstance(activity, dict)
    return activity


@pytest.mark.parametrize(
    ("document", "message", "where"),
    [
        ([1, 2], "JSON object", ""),
        ({"entity": {}}, "no activity", "activity"),
        ({"activity": []}, "must be an object", "activity"),
        ({"activity": {"a": "not attributes"}}, "must be an object of attributes", "activity.a"),
    ],
)
def test_what_is_not_prov_json(document: Any, message: str, where: str) -> None:
    with pytest.raises(ProvenanceError, match=message) as info:
        read_provenance(document)
    assert info.value.where == where


def test_broken_worksteps_parts_are_named() -> None:
    document = _record()
    _activity(document)["worksteps:compute"]["$"] = "{not json"
    with pytest.raises(ProvenanceError, match="not JSON") as info:
        read_provenance(document)
    assert info.value.where.endswith("worksteps:compute")

    document = _record()
    _activity(document)["worksteps:compute"]["$"] = json.dumps(
        {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 8, "max": 2}}
    )
    with pytest.raises(ProvenanceError, match="greater than max") as info:
        read_provenance(document)
    assert info.value.where.endswith("worksteps:request")

    document = _record()
    _activity(document)["prov:endTime"] = "yesterday"
    with pytest.raises(ProvenanceError, match="not an ISO 8601") as info:
        read_provenance(document)
    assert info.value.where.endswith("prov:endTime")

    document = _record()
    _activity(document)["worksteps:offer"] = "cheap"
    with pytest.raises(ProvenanceError, match="JSON object"):
        read_provenance(document)


def test_build_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="end before"):
        _record(started=END, ended=START)
    with pytest.raises(ValueError, match="empty"):
        _record(outputs=["  "])
    with pytest.raises(ValueError, match="must not be empty"):
        _record(site="")


_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
_ranges = st.tuples(st.integers(0, 64), st.integers(0, 64)).map(sorted)


@st.composite
def _requests(draw: st.DrawFn) -> ExecutionRequest:
    body: dict[str, Any] = {}
    if draw(st.booleans()):
        body["meta"] = {"name": draw(_names)}
    if draw(st.booleans()):
        body["executable"] = {
            "kind": kinds.EXEC_DOCKER,
            "image": {"locations": [draw(_names)]},
            "environment": draw(st.dictionaries(_names, _names, max_size=3)),
        }
    if draw(st.booleans()):
        low, high = draw(_ranges)
        body["compute"] = {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": low, "max": high}}
    body["data"] = [
        {"kind": kinds.DATA_SIMPLE, "location": location}
        for location in draw(st.lists(_names, max_size=3))
    ]
    return ExecutionRequest.model_validate(body)


@settings(max_examples=60, deadline=None)
@given(request=_requests(), outputs=st.lists(_names, max_size=3), version=st.integers(1, 10**6))
def test_any_request_survives_the_record(
    request: ExecutionRequest, outputs: list[str], version: int
) -> None:
    ref = WorkstepRef(uuid=uuid4(), version=version)
    outputs = [o for o in outputs if o.strip()]
    document = build_provenance(
        session="s",
        request=request,
        site="x",
        broker="b",
        phase="COMPLETED",
        outputs=outputs,
        workstep=ref,
    )
    record = read_provenance(json.loads(json.dumps(document)))
    assert record.request == request
    assert record.outputs == outputs
    assert record.workstep == ref
