"""Workstep <-> ExecutionRequest without loss, for any workstep (hypothesis), and through JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from worksteps.editor.model import Origin, OriginMode, Workstep, WorkstepContent, content_of_request
from worksteps.schema import ExecutionRequest, kinds

_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
_meta = st.one_of(st.none(), st.builds(lambda n: {"name": n}, _names))


@st.composite
def _range(draw: st.DrawFn, units: bool = False) -> dict[str, Any]:
    low, high = sorted(draw(st.tuples(st.integers(0, 4096), st.integers(0, 4096))))
    out: dict[str, Any] = {"min": low}
    if draw(st.booleans()):
        out["max"] = high
    if units and draw(st.booleans()):
        out["units"] = "GiB"
    return out


def _without_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


_executables = st.one_of(
    st.builds(
        lambda meta, image, command, env: _without_none(
            {
                "kind": kinds.EXEC_DOCKER,
                "meta": meta,
                "image": {"locations": [image]},
                "command": command,
                "environment": env,
            }
        ),
        _meta,
        _text,
        st.one_of(st.none(), st.lists(_text, max_size=3)),
        st.one_of(st.none(), st.dictionaries(_names, _text, max_size=2)),
    ),
    st.builds(lambda loc: {"kind": kinds.EXEC_JUPYTER, "location": loc}, _text),
    st.builds(lambda loc: {"kind": kinds.EXEC_SINGULARITY, "location": loc}, _text),
)
_data = st.one_of(
    st.builds(
        lambda meta, loc: _without_none({"kind": kinds.DATA_SIMPLE, "meta": meta, "location": loc}),
        _meta,
        _text,
    ),
    st.builds(
        lambda scope, name: {"kind": kinds.DATA_RUCIO, "rucio": {"scope": scope, "object": name}},
        _names,
        _names,
    ),
    st.builds(lambda ivoid: {"kind": kinds.DATA_IVOA, "ivoa": {"ivoid": ivoid}}, _text),
    st.builds(
        lambda ns, name, size: {
            "kind": kinds.DATA_SKAO,
            "skao": {"namespace": ns, "objectname": name, "datasize": size},
        },
        _names,
        _names,
        st.integers(0, 2**40),
    ),
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["meta"] = _without_none(
            {"name": draw(_text), "description": draw(st.one_of(st.none(), _text))}
        )
    if draw(st.booleans()):
        doc["executable"] = draw(_executables)
    if draw(st.booleans()):
        doc["compute"] = {
            "kind": kinds.COMPUTE_SIMPLE,
            "cores": draw(_range()),
            "memory": draw(_range(units=True)),
            "volumes": [
                {
                    "kind": kinds.VOLUME_SIMPLE,
                    "path": f"/data/{n}",
                    "resource": n,
                    "mode": "READONLY",
                }
                for n in draw(st.lists(_names, max_size=2, unique=True))
            ],
        }
    if storage := draw(
        st.lists(
            st.builds(lambda r: {"kind": kinds.STORAGE_SIMPLE, "size": r}, _range()), max_size=2
        )
    ):
        doc["storage"] = storage
    if data := draw(st.lists(_data, max_size=3)):
        doc["data"] = data
    if draw(st.booleans()):
        hours = draw(st.integers(1, 100))
        doc["schedule"] = {"requested": {"duration": f"PT{hours}H"}}
    if draw(st.booleans()):
        doc["costs"] = [{"kind": kinds.COST_SIMPLE, "type": "energy", "min": 1.5, "max": 2.5}]
    return doc


def _workstep(request: ExecutionRequest, version: int) -> Workstep:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    return Workstep.from_request(
        request,
        uuid=uuid4(),
        owner="alice",
        origin=Origin(mode=OriginMode.REQUEST, source="https://example.org/x"),
        version=version,
        created=now,
        modified=now + timedelta(seconds=version),
    )


@settings(max_examples=150, deadline=None)
@given(doc=requests(), version=st.integers(1, 10**6))
def test_a_request_and_its_workstep_are_the_same_thing(doc: dict[str, Any], version: int) -> None:
    request = ExecutionRequest.model_validate(doc)
    workstep = _workstep(request, version)
    assert workstep.to_request() == request  # request -> workstep -> request
    assert workstep.to_request().model_dump(mode="json", exclude_none=True) == request.model_dump(
        mode="json", exclude_none=True
    )
    identity = {
        k: getattr(workstep, k)
        for k in ("uuid", "owner", "origin", "version", "created", "modified")
    }
    assert Workstep.from_request(workstep.to_request(), **identity) == workstep
    # what the store keeps: JSON
    assert Workstep.model_validate_json(workstep.model_dump_json()) == workstep
    assert content_of_request(request) == workstep.content


def test_empty_lists_are_absent_and_parts_do_not_alias() -> None:
    content = WorkstepContent(name="x")
    assert content.to_request().model_dump(exclude_none=True) == {"meta": {"name": "x"}}
    request = ExecutionRequest.model_validate(
        {"compute": {"kind": kinds.COMPUTE_SIMPLE, "cores": {"min": 1}}, "data": []}
    )
    held = content_of_request(request)
    assert held.data == [] and held.to_request().data is None
    assert held.compute is not None and held.compute.cores is not None
    held.compute.cores.min = 7
    assert request.compute is not None and request.compute.cores is not None
    assert request.compute.cores.min == 1
