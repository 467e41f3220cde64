"""Reading an IVOA DataLink response (a VOTable) to find where a dataset's bytes are.

Only the TABLEDATA serialisation is read (what DataLink services answer by default). A
document with a DOCTYPE is refused before parsing, so no entity can be expanded.
"""

from __future__ import annotations

from xml.etree import ElementTree

from worksteps.editor.fetch import unfetchable
from worksteps.schema.resources import DataLink

__all__ = ["primary_link", "read_datalink"]

_COLUMNS = (
    "ID",
    "access_url",
    "service_def",
    "error_message",
    "description",
    "semantics",
    "content_type",
    "content_length",
    "content_qualifier",
    "local_semantics",
    "link_auth",
    "link_authorized",
)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_datalink(body: bytes, field: str) -> list[DataLink]:
    """Every row of a DataLink VOTable, or 422 naming ``field`` when it is not one."""
    head = body[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in body.upper():
        raise unfetchable(field, "the DataLink document declares a DOCTYPE, which is refused")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise unfetchable(field, f"the DataLink response is not XML ({exc})") from None
    if _local(root.tag) != "VOTABLE":
        raise unfetchable(field, "the document is not a VOTable (a DataLink response)")
    table = next((e for e in root.iter() if _local(e.tag) == "TABLE"), None)
    if table is None:
        raise unfetchable(field, "the DataLink VOTable has no TABLE")
    names = [(e.get("name") or "") for e in table.iter() if _local(e.tag) == "FIELD"]
    data = next((e for e in table.iter() if _local(e.tag) == "TABLEDATA"), None)
    if data is None:
        raise unfetchable(field, "only TABLEDATA DataLink responses can be read")
    wanted = {c.lower(): c for c in _COLUMNS}
    rows = []
    for tr in (e for e in data if _local(e.tag) == "TR"):
        cells = [(td.text or "").strip() for td in tr if _local(td.tag) == "TD"]
        values: dict[str, str | int | None] = {}
        for name, cell in zip(names, cells, strict=False):
            column = wanted.get(name.lower())
            if column and cell:
                values[column] = cell
        length = values.get("content_length")
        values["content_length"] = (
            int(length) if isinstance(length, str) and length.isdigit() else None
        )
        rows.append(DataLink.model_validate(values))
    return rows


def primary_link(rows: list[DataLink], field: str) -> DataLink:
    """The ``#this`` row (the dataset itself), or 422 with the service's error message."""
    for row in rows:
        if row.semantics == "#this" and row.access_url:
            return row
    errors = [row.error_message for row in rows if row.semantics == "#this" and row.error_message]
    reason = errors[0] if errors else "the DataLink response has no #this link to the data"
    raise unfetchable(field, reason)
