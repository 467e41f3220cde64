"""Node paths: the only way a request names a file, so traversal is refused in one place.

A :class:`NodePath` is absolute, normalised and made of plain names: no empty, ``.`` or ``..``
segment, no NUL and no backslash survives :func:`parse_path`. Percent-encoded variants are
decoded by the HTTP layer (or by :func:`parse_node_uri`) *before* the check, so ``%2e%2e`` and
``%2F`` cannot smuggle a parent reference past it. The file-system side additionally checks
that the resolved path stays under the root, which stops symlinks planted by other tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import VOSpaceFault

__all__ = ["NodePath", "parse_node_uri", "parse_path"]

_FORBIDDEN_CHARS = ("\x00", "\\")


@dataclass(frozen=True, order=True)
class NodePath:
    """An absolute node path; ``segments == ()`` is the root container."""

    segments: tuple[str, ...]

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments)

    @property
    def name(self) -> str:
        return self.segments[-1] if self.segments else ""

    @property
    def parent(self) -> NodePath:
        if not self.segments:
            raise VOSpaceFault("InvalidURI", "the root node has no parent")
        return NodePath(self.segments[:-1])

    def child(self, name: str) -> NodePath:
        return NodePath((*self.segments, name))

    def is_within(self, other: NodePath) -> bool:
        """True if this path is ``other`` or lies below it."""
        return self.segments[: len(other.segments)] == other.segments

    @property
    def home_owner(self) -> str | None:
        """The user whose home holds this node (``/home/<user>/...``), else None."""
        if len(self.segments) >= 2 and self.segments[0] == "home":
            return self.segments[1]
        return None

    def __str__(self) -> str:
        return self.path


def parse_path(raw: str) -> NodePath:
    """A decoded URL path (``/home/alice/x``) as a :class:`NodePath`, or ``InvalidURI``."""
    text = raw
    if text in ("", "/"):
        return NodePath(())
    if any(c in text for c in _FORBIDDEN_CHARS):
        raise VOSpaceFault("InvalidURI", f"illegal character in path {raw!r}")
    parts = text.strip("/").split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise VOSpaceFault("InvalidURI", f"illegal path segment {part!r} in {raw!r}")
    return NodePath(tuple(parts))


def parse_node_uri(uri: str, authority: str) -> NodePath:
    """A ``vos://<authority>/path`` URI of this service as a :class:`NodePath`.

    ``~`` and ``!`` are equivalent in the authority (both spellings are in use). A URI of
    another service is ``InvalidURI``: this service cannot resolve it.
    """
    parts = urlsplit(uri.strip())
    if parts.scheme != "vos":
        raise VOSpaceFault("InvalidURI", f"not a vos URI: {uri}")
    if parts.netloc.replace("!", "~") != authority:
        raise VOSpaceFault("InvalidURI", f"{uri} is not a node of vos://{authority}")
    if parts.query or parts.fragment:
        raise VOSpaceFault("InvalidURI", f"query or fragment not allowed in {uri}")
    return parse_path(unquote(parts.path))
