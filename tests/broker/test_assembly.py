"""Offers put together from the dumped request are the documents the schema itself would write:
same fields, same order, same formats, with the offer's own UUIDs in every reference."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from worksteps.broker.assembly import OfferTemplate
from worksteps.broker.intake import take_in
from worksteps.broker.planner import Resources, Slot
from worksteps.broker.settings import BrokerSettings
from worksteps.schema import ExecutionRequest, normalize_request
from worksteps.schema.common import Message, MessageLevel
from worksteps.schema.documents import ScheduledExecutionSession

EXAMPLES = Path(__file__).resolve().parents[3] / "shared/spec/executionbroker/examples"
NOW = datetime(2030, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
SETTINGS = BrokerSettings(
    site="assembly",
    database_url="sqlite:///unused.sqlite",
    capacity={"cores": 64, "memory": 256, "storage": 100_000},  # type: ignore[arg-type]
    allowed_file_roots=[Path("/")],
)


def _requests() -> list[Path]:
    return [p for p in sorted(EXAMPLES.glob("*/*offerset-request.*")) if p.parent.name != "006"]


def _load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def _components(doc: dict[str, Any]) -> list[dict[str, Any]]:
    compute = doc["compute"]
    return [
        doc["executable"],
        compute,
        *compute.get("volumes", []),
        *doc.get("storage", []),
        *doc.get("data", []),
    ]


@pytest.mark.parametrize("path", _requests(), ids=lambda p: p.name)
def test_an_offer_is_the_document_the_schema_would_write(path: Path) -> None:
    request = ExecutionRequest.model_validate(normalize_request(_load(path)))
    note = "prepared in about a minute"
    intake = take_in(request, SETTINGS, NOW, timedelta(minutes=1), [note])
    assert not intake.refusals, intake.refusals
    low, high = intake.demand.minimum, intake.demand.maximum
    granted = Resources(high.cores, low.memory, 0, high.storage)
    slot = Slot(intake.window_start, intake.window_start + intake.duration, granted)
    expires = NOW + timedelta(minutes=5)
    template = OfferTemplate(
        intake, base_url="http://b/", settings=SETTINGS, now=NOW, expires=expires
    )
    offers = [template.offer(slot, 0), template.offer(slot, 1)]

    for index, offer in enumerate(offers):
        doc = offer.document
        canonical = ScheduledExecutionSession.model_validate(doc).model_dump(
            mode="json", exclude_none=True
        )
        assert json.dumps(canonical) == json.dumps(doc)  # order-sensitive
        assert doc["meta"]["name"].endswith(f"-offer-{index}")
        assert doc["meta"]["messages"][0]["message"] == note
        assert doc["compute"]["cores"] == {"min": granted.cores, "max": granted.cores}
        assert doc["compute"]["memory"] == {"min": granted.memory, "max": granted.memory}
        stores = doc.get("storage", [])
        assert sum(s["size"]["min"] for s in stores) == (granted.storage if stores else 0)
        own = {c["meta"]["uuid"]: c for c in _components(doc)}
        assert [u for u, _ in offer.components] == list(own)
        for uuid, family in offer.components:
            assert own[uuid]["meta"]["url"] == f"http://b/{family}/{uuid}"
            assert own[uuid]["phase"] == "INITIALIZING"
        for data in doc.get("data", []):
            assert own[data["storage"]]["kind"].endswith("storage-resource.yaml")
        for volume in doc["compute"].get("volumes", []):
            assert volume["resource"] in own
    first, second = ({c for c, _ in o.components} for o in offers)
    assert not first & second  # every offer has components of its own


def test_refusal_messages_and_empty_lists_come_out_as_the_model_writes_them() -> None:
    request = ExecutionRequest.model_validate(
        {
            "meta": {"name": "lists"},
            "executable": {
                "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"
                "executable/jupyter-notebook.yaml",
                "meta": {"name": "nb", "messages": [], "description": "mine"},
                "location": "https://example.org/n.ipynb",
            },
            "storage": [
                {
                    "kind": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/"
                    "kinds/storage/simple-storage-resource.yaml",
                    "meta": {"name": "scratch"},
                    "size": {"min": 2, "max": 10, "units": "GiB"},
                    "data": [],
                }
            ],
            "data": [],
        }
    )
    intake = take_in(request, SETTINGS, NOW)
    intake.notes.append(Message(kind="urn:x", level=MessageLevel.INFO, message="n", template="n"))
    slot = Slot(
        intake.window_start, intake.window_start + timedelta(hours=1), Resources(1, 2, 0, 7)
    )
    doc = (
        OfferTemplate(intake, base_url="b/", settings=SETTINGS, now=NOW, expires=NOW)
        .offer(slot, 0)
        .document
    )
    canonical = ScheduledExecutionSession.model_validate(doc).model_dump(
        mode="json", exclude_none=True
    )
    assert json.dumps(canonical) == json.dumps(doc)
    assert "messages" not in doc["executable"]["meta"]  # an empty list is dropped
    assert doc["storage"][0]["size"] == {"min": 7, "max": 7}
    assert "data" not in doc["storage"][0]
    assert doc["data"] == []
