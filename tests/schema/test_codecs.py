"""JSON, YAML and XML codecs: the captured examples, round-trips, hostile input, negotiation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worksteps.core.errors import BadRequest, NotAcceptable, UnsupportedMedia
from worksteps.schema.codecs import MAX_DEPTH, MediaType, decode, encode, media_type_of, negotiate

JSON, YAML, XML = MediaType.JSON, MediaType.YAML, MediaType.XML
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "spec" / "executionbroker" / "examples"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".json", ".yaml"))


def textual(value: Any) -> Any:
    """What XML gives back: the same tree, None dropped, scalars written as JSON writes them."""
    if isinstance(value, dict):
        return {k: textual(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [textual(v) for v in value if v is not None]
    if isinstance(value, str):
        return value
    return json.dumps(value)


def media_of(path: Path) -> MediaType:
    return JSON if path.suffix == ".json" else YAML


def bad_request(body: bytes, media: MediaType) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        decode(body, media)
    assert info.value.status == 400
    return info.value


# --- the captured Calycopis examples ---------------------------------------------------------


def test_all_examples_are_found() -> None:
    assert len(EXAMPLE_FILES) >= 70
    assert any(p.name.endswith("-request.json") for p in EXAMPLE_FILES)
    assert any(p.name.endswith("-request.yaml") for p in EXAMPLE_FILES)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_decodes_and_round_trips(path: Path) -> None:
    document = decode(path.read_bytes(), media_of(path))
    assert document
    assert all(isinstance(key, str) for key in document)

    as_xml = encode(document, XML, "offers-request")
    assert decode(as_xml, XML) == textual(document)

    as_yaml = encode(document, YAML, "ignored")
    assert decode(as_yaml, YAML) == document
    assert encode(decode(as_yaml, YAML), YAML, "ignored") == as_yaml

    as_json = encode(document, JSON, "ignored")
    assert decode(as_json, JSON) == document


def test_example_values_keep_their_yaml_types() -> None:
    request = decode((EXAMPLES / "001" / "001-001-offerset-request.yaml").read_bytes(), YAML)
    assert request["compute"]["cores"] == {"min": 5, "max": 15}
    assert request["schedule"]["requested"]["duration"] == "PT1H"
    response = decode((EXAMPLES / "001" / "001-002-offerset-response.yaml").read_bytes(), YAML)
    assert response["result"] == "YES"
    assert response["offers"][0]["expires"] == "2025-11-25T05:17:49.39927141Z"


def test_offer_set_xml_uses_the_spec_element_names() -> None:
    response = decode((EXAMPLES / "001" / "001-003-offerset-response.json").read_bytes(), JSON)
    xml = encode(response, XML, "offers-response").decode()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<offers-response kind="')
    assert "<offers><execution kind=" in xml
    assert "shape=" not in xml


# --- the XML mapping -------------------------------------------------------------------------


def test_xml_mapping_in_detail() -> None:
    document = {
        "kind": "https://example.org/kinds/docker",
        "meta": {"name": "job", "messages": [{"level": "INFO", "values": {"a b": "1", "x": 2}}]},
        "command": ["echo", "hi"],
        "environment": {"HOME": "/home/u"},
        "privileged": False,
        "entrypoint": None,
        "options": [{"kind": "uri:enum-value-option", "path": "phase", "values": ["ACCEPTED"]}],
        "update": {"type": "uri:enum-value-update", "value": "ACCEPTED"},
        "rucio": {"type": "FILE"},
    }
    xml = encode(document, XML, "execution").decode()
    assert xml == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<execution kind="https://example.org/kinds/docker">'
        "<meta><name>job</name><messages><message><level>INFO</level>"
        '<values><entry key="a b">1</entry><entry key="x">2</entry></values>'
        "</message></messages></meta>"
        "<command><arg>echo</arg><arg>hi</arg></command>"
        '<environment><entry key="HOME">/home/u</entry></environment>'
        "<privileged>false</privileged>"
        '<options><option kind="uri:enum-value-option"><path>phase</path>'
        "<values><value>ACCEPTED</value></values></option></options>"
        '<update type="uri:enum-value-update"><value>ACCEPTED</value></update>'
        "<rucio><type>FILE</type></rucio>"
        "</execution>"
    )
    assert decode(xml.encode(), XML) == textual(document)


@pytest.mark.parametrize(
    ("value", "xml"),
    [
        ({"offers": []}, "<offers/>"),
        ({"note": ""}, "<note/>"),
        ({"env": {}}, '<env shape="map"/>'),
        ({"environment": {}}, '<environment shape="map"/>'),
        ({"values": {}}, '<values shape="map"/>'),
        ({"storage": ""}, '<storage shape="text"/>'),
        ({"storage": "my-store"}, "<storage>my-store</storage>"),
        ({"tags": ["a"]}, '<tags shape="list"><item>a</item></tags>'),
        ({"tags": []}, '<tags shape="list"/>'),
        ({"tags": ["a", "b"]}, "<tags><item>a</item><item>b</item></tags>"),
        ({"offers": {"a": "1"}}, '<offers shape="map"><a>1</a></offers>'),
        (
            {"grid": [["a"], []]},
            '<grid><item shape="list"><item>a</item></item><item shape="list"/></grid>',
        ),
        ({"kind": {"nested": "1"}}, "<kind><nested>1</nested></kind>"),
    ],
)
def test_xml_shape_rules(value: dict[str, Any], xml: str) -> None:
    written = encode(value, XML, "doc").decode()
    assert written.endswith(f"<doc>{xml}</doc>")
    assert decode(written.encode(), XML) == textual(value)


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        ("<doc/>", {}),
        ("<doc><offers/></doc>", {"offers": []}),
        ("<doc><offers>\n  </offers></doc>", {"offers": []}),
        ("<doc><note/></doc>", {"note": ""}),
        ("<doc><note> </note></doc>", {"note": " "}),
        ('<doc><image arch="amd64"/></doc>', {"image": {"arch": "amd64"}}),
        ("<doc><tags><t>a</t><t>b</t></tags></doc>", {"tags": ["a", "b"]}),
        ("<doc><locations><location>x</location></locations></doc>", {"locations": ["x"]}),
        ('<e:doc xmlns:e="urn:x"><e:name>n</e:name></e:doc>', {"name": "n"}),
        ("<doc>\n  <a>1</a>\n  <b>x &amp; y</b>\n</doc>", {"a": "1", "b": "x & y"}),
        ("<doc><a><![CDATA[<raw>]]></a></doc>", {"a": "<raw>"}),
    ],
)
def test_xml_reads_plain_documents(xml: str, expected: dict[str, Any]) -> None:
    assert decode(xml.encode(), XML) == expected


@pytest.mark.parametrize(
    ("xml", "fragment"),
    [
        ("<doc>words</doc>", "has text where child elements were expected"),
        ("<doc><a>1<b>2</b></a></doc>", "has text where child elements were expected"),
        ("<doc><a>1</a><a>2</a></doc>", "gives 'a' more than once"),
        ("<doc><m><x>1</x><x>2</x><y>3</y></m></doc>", "gives 'x' more than once"),
        ('<doc kind="k"><kind>k</kind></doc>', "gives 'kind' more than once"),
        ('<doc><a shape="text"><b/></a></doc>', "is marked as text but has child elements"),
        ("<doc><a></doc>", "not well-formed at line 1, column"),
        ("", "not well-formed"),
    ],
)
def test_xml_refuses_unreadable_shapes(xml: str, fragment: str) -> None:
    assert fragment in bad_request(xml.encode(), XML).detail


def test_xml_writes_what_xml_cannot_carry_as_a_clear_refusal() -> None:
    with pytest.raises(NotAcceptable, match=r"U\+0001.*application/json"):
        encode({"a": "bell\x01"}, XML, "doc")
    with pytest.raises(ValueError, match="plain XML element name"):
        encode({"a": "1"}, XML, "not a name")
    with pytest.raises(TypeError, match="not JSON-like"):
        encode({"a": object()}, XML, "doc")


def test_xml_keeps_carriage_returns_and_attribute_whitespace() -> None:
    document = {"kind": "a\tb\nc\r", "text": "line\r\nnext\r", "entries": {"k\n": " v "}}
    assert decode(encode(document, XML, "doc"), XML) == document


# --- hostile and malformed input -------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<doc><a>&lol3;</a></doc>"""

YAML_BOMB = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]
"""


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (BILLION_LAUGHS, "xml-dtd"),
        (b'<!DOCTYPE doc SYSTEM "http://127.0.0.1:9/x.dtd"><doc/>', "xml-dtd"),
        (b'<!DOCTYPE doc [<!ENTITY x SYSTEM "file:///etc/passwd">]><doc>&x;</doc>', "xml-dtd"),
        (b"<!DOCTYPE doc><doc/>", "xml-dtd"),
    ],
)
def test_xml_refuses_dtds_and_entities(body: bytes, reason: str) -> None:
    error = bad_request(body, XML)
    assert error.reason == reason
    assert "not accepted" in error.detail


def test_yaml_refuses_alias_bombs_and_anchors() -> None:
    error = bad_request(YAML_BOMB, YAML)
    assert error.reason == "yaml-alias"
    assert "line 1, column 4" in error.detail
    assert bad_request(b"a: &x 1\nb: 2\n", YAML).reason == "yaml-alias"
    assert bad_request(b"a: 1\nb: *x\n", YAML).reason in ("yaml-alias", "invalid-yaml")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"a: 1\na: 2\n", "line 2, column 1: duplicate key 'a'"),
        (b"a: [1, 2\n", "line 2, column 1"),
        (b"a: b: c\n", "line 1, column 5"),
        (b"a:\n\t- 1\n", "line 2, column 1"),
        (b"a: !!python/object/apply:os.system ['true']\n", "tag:yaml.org,2002:python/object/apply"),
        (b"a: !!binary aGVsbG8=\n", "is not accepted"),
        (b"a: !!set {x}\n", "is not accepted"),
        (b"a: !!timestamp 2023-08-09\n", "is not accepted"),
        (b"? [a, b]\n: 1\n", "a mapping key must be a scalar"),
        (b"a: 1\n---\nb: 2\n", "expected a single document"),
        (b"a: \x01\n", "unacceptable character"),
    ],
)
def test_yaml_errors_say_where(body: bytes, fragment: str) -> None:
    error = bad_request(body, YAML)
    assert error.reason == "invalid-yaml"
    assert fragment in error.detail


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"a": 1,}', "line 1, column 9"),
        (b'{\n  "a": tru\n}', "line 2, column 8"),
        (b'{"a": 1, "a": 2}', "Duplicate key 'a'"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid"),
        (b"", "line 1, column 1"),
    ],
)
def test_json_errors_say_where(body: bytes, fragment: str) -> None:
    assert fragment in bad_request(body, JSON).detail


@pytest.mark.parametrize("media", [JSON, YAML])
def test_non_utf8_is_refused(media: MediaType) -> None:
    body = '{"name": "Müller"}'.encode("latin-1")
    error = bad_request(body, media)
    assert error.reason == "not-utf8"
    assert "offset 11" in error.detail


def test_utf8_bom_and_utf16_are_told_apart() -> None:
    assert decode(b'\xef\xbb\xbf{"a": 1}', JSON) == {"a": 1}
    assert bad_request('{"a": 1}'.encode("utf-16"), JSON).reason == "not-utf8"


@pytest.mark.parametrize(
    ("body", "media", "found"),
    [
        (b"[1, 2]", JSON, "a list"),
        (b'"text"', JSON, "a str"),
        (b"null", JSON, "nothing"),
        (b"- a\n- b\n", YAML, "a list"),
        (b"just words\n", YAML, "a str"),
        (b"", YAML, "nothing"),
        (b"# only a comment\n", YAML, "nothing"),
    ],
)
def test_top_level_must_be_a_mapping(body: bytes, media: MediaType, found: str) -> None:
    error = bad_request(body, media)
    assert error.reason == "not-a-mapping"
    assert f"found {found}" in error.detail


@pytest.mark.parametrize("media", [JSON, YAML, XML])
def test_deep_nesting_is_refused(media: MediaType) -> None:
    deep: dict[str, Any] = {}
    for _ in range(MAX_DEPTH + 5):
        deep = {"a": deep}
    body = {
        JSON: json.dumps(deep).encode(),
        YAML: json.dumps(deep).encode(),  # JSON is a flow-style YAML document
        XML: b"<doc>" + b"<a>" * (MAX_DEPTH + 5) + b"</a>" * (MAX_DEPTH + 5) + b"</doc>",
    }[media]
    assert bad_request(body, media).reason == "too-deep"
    runaway = b"[" * 100_000 + b"]" * 100_000
    assert bad_request(runaway, JSON).reason in ("too-deep", "invalid-json")


def test_lone_surrogates_and_overflowing_numbers_are_refused() -> None:
    assert bad_request(b'{"a": "\\ud800"}', JSON).reason == "bad-string"
    assert bad_request(b'{"a": [1e999]}', JSON).reason == "bad-number"
    assert bad_request(b"a: -1e999\n", YAML).reason == "bad-number"
    assert bad_request(b"a: " + b"7" * 5000 + b"\n", YAML).reason == "invalid-yaml"


# --- YAML 1.2 core semantics -----------------------------------------------------------------


def test_yaml_reads_the_core_schema_not_yaml_1_1() -> None:
    body = b"""result: NO
on: yes
start: 2023-08-09
time: 12:30:00
ports: 8080:80
octal: 0o17
hex: 0x1F
old_octal: 017
int: -12
float: 1.5e3
bools: [true, False, TRUE]
nulls: [null, ~, ]
empty:
quoted: "123"
inf: .inf
"""
    assert decode(body, YAML) == {
        "result": "NO",
        "on": "yes",
        "start": "2023-08-09",
        "time": "12:30:00",
        "ports": "8080:80",
        "octal": 15,
        "hex": 31,
        "old_octal": 17,
        "int": -12,
        "float": 1500.0,
        "bools": [True, False, True],
        "nulls": [None, None],
        "empty": None,
        "quoted": "123",
        "inf": ".inf",
    }


def test_yaml_output_quotes_what_any_reader_would_misread() -> None:
    document = {"result": "NO", "on": "yes", "day": "2023-08-09", "octal": "0o17", "n": "1"}
    text = encode(document, YAML, "doc").decode()
    for value in ("NO", "yes", "2023-08-09", "0o17", "1"):
        assert f"'{value}'" in text
    assert yaml_safe_load(text) == document


def yaml_safe_load(text: str) -> Any:
    import yaml  # PyYAML's own YAML 1.1 reader must read our output the same way

    return yaml.safe_load(text)


def test_yaml_output_is_block_style_in_insertion_order() -> None:
    document = {"zeta": 1, "alpha": {"b": [1, 2], "a": "Ωmega"}, "text": "one\ntwo\n"}
    text = encode(document, YAML, "doc").decode()
    assert text == "zeta: 1\nalpha:\n  b:\n    - 1\n    - 2\n  a: Ωmega\ntext: |\n  one\n  two\n"
    with pytest.raises(ValueError, match="finite"):
        encode({"x": float("nan")}, YAML, "doc")


def test_json_output_is_compact_utf8() -> None:
    assert encode({"a": [1, "é"], "b": None}, JSON, "doc") == '{"a":[1,"é"],"b":null}'.encode()
    with pytest.raises(ValueError, match="JSON compliant"):
        encode({"x": float("inf")}, JSON, "doc")


# --- round-trips of arbitrary JSON-like documents --------------------------------------------

# Every character XML 1.0 can carry, with the line breaks YAML treats specially made likely.
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
        st.sampled_from("\t\n\r\x7f\x85\x9f\u2028\u2029\ufeff"),
    ),
    max_size=12,
)
_KEYS = st.one_of(
    st.sampled_from(
        [
            "kind",
            "type",
            "offers",
            "values",
            "environment",
            "storage",
            "data",
            "command",
            "entry",
            "key",
            "shape",
            "item",
            "name",
            "xmlish",
            "a-b.c_d",
        ]
    ),
    _TEXT,
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
    st.sampled_from(["uri:x", "https://k/1", "NO", "on", "0o17", "2023-08-09", "", " ", "1"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=24,
)
_DOCUMENTS = st.dictionaries(_KEYS, _VALUES, max_size=5)


@settings(max_examples=200, deadline=None)
@given(_DOCUMENTS, st.sampled_from(["doc", "offers", "execution", "storage"]))
def test_every_codec_round_trips_any_document(document: dict[str, Any], root: str) -> None:
    # One test for the three codecs: drawing the documents costs far more than coding them.
    assert decode(encode(document, JSON, root), JSON) == document

    from_yaml = decode(encode(document, YAML, root), YAML)
    assert from_yaml == document
    assert list(from_yaml) == list(document)

    assert decode(encode(document, XML, root), XML) == textual(document)


# --- choosing formats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b"", JSON),
        ("application/json; charset=utf-8", b"", JSON),
        ("APPLICATION/JSON", b"", JSON),
        ("application/problem+json", b"", JSON),
        ("application/yaml", b"", YAML),
        ("application/x-yaml", b"", YAML),
        ("text/yaml", b"", YAML),
        ("text/x-yaml; charset=utf-8", b"", YAML),
        ("application/xml", b"", XML),
        ("text/xml", b"", XML),
        (None, b'  {"a": 1}', JSON),
        (None, b"\xef\xbb\xbf[1]", JSON),
        (None, b"\n<doc/>", XML),
        (None, b"a: 1\n", YAML),
        ("", b"---\na: 1\n", YAML),
    ],
)
def test_media_type_of(content_type: str | None, body: bytes, expected: MediaType) -> None:
    assert media_type_of(content_type, body) is expected


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "json", "text/json"])
def test_unknown_content_type_is_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMedia) as info:
        media_type_of(content_type, b"{}")
    assert info.value.status == 415
    assert "application/json, application/yaml, application/xml" in info.value.detail
    assert info.value.problem()["supported"] == list(MediaType)


@pytest.mark.parametrize(
    ("accept", "request_type", "expected"),
    [
        (None, None, YAML),
        (None, JSON, YAML),
        ("", None, YAML),
        ("not a media range", None, YAML),
        ("*/*", None, JSON),
        ("*/*", YAML, YAML),
        ("*", XML, XML),
        ("application/*", XML, XML),
        ("application/*", None, JSON),
        ("text/*", None, YAML),
        ("text/*", XML, XML),
        ("application/xml", JSON, XML),
        ("text/yaml", None, YAML),
        ("application/x-yaml", JSON, YAML),
        ("application/json;q=0.5, application/xml", None, XML),
        ("application/xml;q=0.9, application/json;q=0.9", None, XML),
        ("application/json;q=0, */*", None, YAML),
        ("application/json;q=0, */*", XML, XML),
        ("text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8", JSON, XML),
        ("application/json, */*;q=0.1", XML, JSON),
        ("application/yaml;q=0.2, */*;q=0.5", YAML, JSON),
        ("application/yaml;q=0.2, */*;q=0.5", None, JSON),
        ("application/json;q=oops, application/xml", None, XML),
    ],
)
def test_negotiate(accept: str | None, request_type: MediaType | None, expected: MediaType) -> None:
    assert negotiate(accept, request_type) is expected


@pytest.mark.parametrize("accept", ["text/html", "application/json;q=0", "image/*, text/plain"])
def test_negotiate_refuses_what_it_cannot_produce(accept: str) -> None:
    with pytest.raises(NotAcceptable) as info:
        negotiate(accept, JSON)
    assert info.value.status == 406
    assert repr(accept) in info.value.detail
    assert "application/json, application/yaml, application/xml" in info.value.detail
    assert info.value.problem()["offered"] == list(MediaType)
