"""VOSpace 2.1 and VOSI XML documents: nodes, transfers, capabilities, availability.

Requests are parsed with defusedxml (no entities, no external references) and matched on
local names, so both prefixed (``vos:transfer``) and default-namespace (``<node xmlns=...>``,
as the ``vos`` client writes) forms are read. Responses use the ``vos`` prefix and an
``xsi:type`` of ``vos:ContainerNode`` / ``vos:DataNode``, exactly what the client compares.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree as SafeET

from .errors import VOSpaceFault
from .tree import NodeInfo, Property

__all__ = [
    "UWS",
    "VOS",
    "XLINK",
    "XSI",
    "NodeRequest",
    "Protocol",
    "Transfer",
    "availability_document",
    "capabilities_document",
    "node_document",
    "parse_node",
    "parse_transfer",
    "transfer_document",
    "transfer_element",
]

VOS = "http://www.ivoa.net/xml/VOSpace/v2.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"

# Responses are built with literal prefixes ("vos:node") and explicit xmlns attributes rather
# than ET.register_namespace, which would change how every other ElementTree user in the
# process (the vos client among them) serialises its documents.
NAMESPACES = {"xmlns:vos": VOS, "xmlns:xsi": XSI}

SSO = "ivo://ivoa.net/sso#"
_SECURITY = ("", SSO + "cookie", SSO + "tls-with-certificate", SSO + "token")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(body: bytes, what: str) -> ET.Element:
    try:
        root: ET.Element = SafeET.fromstring(body)
    except Exception as exc:
        raise VOSpaceFault("InvalidArgument", f"invalid {what} document: {exc}") from None
    return root


def _to_bytes(root: ET.Element) -> bytes:
    out: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return out


# -- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRequest:
    """A node document a client sent (PUT creates, POST updates properties)."""

    uri: str
    kind: str
    properties: dict[str, str | None]


def parse_node(body: bytes) -> NodeRequest:
    root = _parse(body, "node")
    if _local(root.tag) != "node":
        raise VOSpaceFault("InvalidArgument", f"expected a node document, got <{root.tag}>")
    kind = root.get(f"{{{XSI}}}type") or "vos:DataNode"
    kind = "vos:" + kind.rsplit(":", 1)[-1]
    props: dict[str, str | None] = {}
    for element in root.iter():
        if _local(element.tag) != "property":
            continue
        uri = element.get("uri")
        if not uri:
            raise VOSpaceFault("InvalidArgument", "property without uri")
        nil = (element.get(f"{{{XSI}}}nil") or element.get("xsi:nil")) == "true"
        props[uri] = None if nil else (element.text or "")
    return NodeRequest(uri=root.get("uri", ""), kind=kind, properties=props)


def _node_element(
    tag: str, uri: str, found: NodeInfo, props: list[Property], parent: ET.Element | None
) -> ET.Element:
    attrs = {"uri": uri, "xsi:type": found.kind}
    if not found.is_container:
        attrs["busy"] = "false"
    if parent is None:
        element = ET.Element(tag, {**NAMESPACES, **attrs})
    else:
        element = ET.SubElement(parent, tag, attrs)
    properties = ET.SubElement(element, "vos:properties")
    for prop in props:
        attrs = {"uri": prop.uri}
        if prop.read_only:
            attrs["readOnly"] = "true"
        ET.SubElement(properties, "vos:property", attrs).text = prop.value
    ET.SubElement(element, "vos:accepts")
    ET.SubElement(element, "vos:provides")
    return element


def node_document(
    uri: str,
    found: NodeInfo,
    props: list[Property],
    children: list[tuple[str, NodeInfo, list[Property]]] | None,
) -> bytes:
    """A node and, for a container, the page of children given (uri, info, properties)."""
    root = _node_element("vos:node", uri, found, props, None)
    if found.is_container:
        nodes = ET.SubElement(root, "vos:nodes")
        for child_uri, child, child_props in children or []:
            _node_element("vos:node", child_uri, child, child_props, nodes)
    return _to_bytes(root)


# -- transfers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    uri: str
    endpoint: str | None = None
    security_method: str | None = None


@dataclass(frozen=True)
class Transfer:
    """A ``vos:transfer``: ``direction`` is a VOSpace direction or a destination node URI."""

    target: str
    direction: str
    protocols: tuple[Protocol, ...] = ()
    keep_bytes: bool = True

    @property
    def is_node_to_node(self) -> bool:
        return self.direction.startswith("vos://")


def parse_transfer(body: bytes) -> Transfer:
    root = _parse(body, "transfer")
    if _local(root.tag) != "transfer":
        raise VOSpaceFault("InvalidArgument", f"expected a transfer document, got <{root.tag}>")
    fields: dict[str, str] = {}
    protocols: list[Protocol] = []
    for child in root:
        name = _local(child.tag)
        if name == "protocol":
            endpoint = security = None
            for part in child:
                if _local(part.tag) == "endpoint":
                    endpoint = (part.text or "").strip()
                elif _local(part.tag) == "securityMethod":
                    security = part.get("uri")
            protocols.append(Protocol(child.get("uri", ""), endpoint, security))
        else:
            fields[name] = (child.text or "").strip()
    if not fields.get("target") or not fields.get("direction"):
        raise VOSpaceFault("InvalidArgument", "transfer needs a target and a direction")
    return Transfer(
        target=fields["target"],
        direction=fields["direction"],
        protocols=tuple(protocols),
        keep_bytes=fields.get("keepBytes", "true").lower() != "false",
    )


def transfer_element(transfer: Transfer) -> ET.Element:
    root = ET.Element("vos:transfer", {**NAMESPACES, "version": "2.1"})
    ET.SubElement(root, "vos:target").text = transfer.target
    ET.SubElement(root, "vos:direction").text = transfer.direction
    for protocol in transfer.protocols:
        element = ET.SubElement(root, "vos:protocol", {"uri": protocol.uri})
        if protocol.endpoint is not None:
            ET.SubElement(element, "vos:endpoint").text = protocol.endpoint
        if protocol.security_method is not None:
            ET.SubElement(element, "vos:securityMethod", {"uri": protocol.security_method})
    if transfer.is_node_to_node:
        ET.SubElement(root, "vos:keepBytes").text = str(transfer.keep_bytes).lower()
    return root


def transfer_document(transfer: Transfer) -> bytes:
    return _to_bytes(transfer_element(transfer))


# -- VOSI -------------------------------------------------------------------------------------


def _capability(standard_id: str, url: str, secured: bool) -> str:
    methods = "".join(
        "<securityMethod/>" if not sm else f"<securityMethod standardID={quoteattr(sm)}/>"
        for sm in (_SECURITY if secured else ("",))
    )
    return (
        f"<capability standardID={quoteattr(standard_id)}>"
        f'<interface xsi:type="vs:ParamHTTP" role="std" version="2.1">'
        f'<accessURL use="base">{escape(url)}</accessURL>{methods}</interface></capability>'
    )


def capabilities_document(base: str) -> bytes:
    """The VOSI capabilities of a Cavern whose endpoints live under ``base`` (no slash)."""
    caps = [
        ("ivo://ivoa.net/std/VOSI#capabilities", "/capabilities", False),
        ("ivo://ivoa.net/std/VOSI#availability", "/availability", False),
        ("ivo://ivoa.net/std/VOSpace/v2.0#nodes", "/nodes", True),
        ("ivo://ivoa.net/std/VOSpace/v2.0#transfers", "/transfers", True),
        ("ivo://ivoa.net/std/VOSpace#sync-2.1", "/synctrans", True),
        ("ivo://ivoa.net/std/VOSpace#files-proto", "/files", True),
        ("ivo://ivoa.net/std/VOSpace#recursive-delete-proto", "/async-delete", True),
    ]
    body = "".join(_capability(sid, base + path, secured) for sid, path, secured in caps)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        f'xmlns:xsi="{XSI}" xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1">'
        f"{body}</vosi:capabilities>\n"
    ).encode()


def availability_document(note: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
        f"<vosi:available>true</vosi:available><vosi:note>{escape(note)}</vosi:note>"
        "</vosi:availability>\n"
    ).encode()
