"""The node tree of one Cavern: a real directory, its node properties, quotas and uploads.

Invariants:
- every file-system path is derived from a :class:`NodePath` and checked to resolve under the
  root (so neither ``..`` nor a symlink planted by another tool can escape it);
- ``<root>/.cavern`` holds the emulator's own state (properties, partial uploads) and is not a
  node: it is invisible in listings and unknown to every call;
- bytes reach a node only through :class:`Upload`, which enforces the owner's quota while it
  streams and makes the file appear whole (write to a temporary file, then rename);
- read-only core properties (date, length, MD5, creator, quota) are computed from the file
  system on every read and can never be set by a client.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from .config import CavernConfig
from .errors import VOSpaceFault
from .paths import NodePath

__all__ = ["CORE", "NodeInfo", "NodeTree", "Property", "Upload", "vospace_date"]

CORE = "ivo://ivoa.net/vospace/core#"
STATE_DIR = ".cavern"
READ_ONLY = frozenset(CORE + p for p in ("date", "length", "MD5", "creator", "quota"))

NodeKind = Literal["vos:ContainerNode", "vos:DataNode"]


@dataclass(frozen=True)
class Property:
    uri: str
    value: str
    read_only: bool


@dataclass(frozen=True)
class NodeInfo:
    path: NodePath
    kind: NodeKind
    size: int
    mtime: float

    @property
    def is_container(self) -> bool:
        return self.kind == "vos:ContainerNode"


def vospace_date(timestamp: float) -> str:
    """IVOA timestamp (UTC, milliseconds, no zone letter), as ``core#date`` carries it."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class NodeTree:
    """Nodes of one service, backed by ``config.root``."""

    def __init__(self, config: CavernConfig) -> None:
        self.config = config
        self.root = config.root.resolve()
        self.state = self.root / STATE_DIR
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        (self.state / "uploads").mkdir(parents=True, exist_ok=True)
        self._props_file = self.state / "properties.json"
        self._props: dict[str, dict[str, str]] = {}
        if self._props_file.exists():
            self._props = json.loads(self._props_file.read_text())
        self._md5: dict[str, tuple[int, int, str]] = {}

    # -- locating -----------------------------------------------------------------------------

    def locate(self, node: NodePath) -> Path:
        """The file-system path of ``node``; NodeNotFound if it would leave the root."""
        if node.segments and node.segments[0] == STATE_DIR:
            raise VOSpaceFault("NodeNotFound", self.config.node_uri(node.path))
        target = self.root.joinpath(*node.segments)
        real = os.path.realpath(target)
        if real != str(self.root) and not real.startswith(str(self.root) + os.sep):
            raise VOSpaceFault("NodeNotFound", self.config.node_uri(node.path))
        return target

    def info(self, node: NodePath) -> NodeInfo:
        target = self.locate(node)
        try:
            st = target.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise VOSpaceFault("NodeNotFound", self.config.node_uri(node.path)) from None
        if target.is_dir():
            return NodeInfo(node, "vos:ContainerNode", 0, st.st_mtime)
        if target.is_file():
            return NodeInfo(node, "vos:DataNode", st.st_size, st.st_mtime)
        raise VOSpaceFault("NodeNotFound", self.config.node_uri(node.path))

    def exists(self, node: NodePath) -> bool:
        try:
            self.info(node)
        except VOSpaceFault:
            return False
        return True

    def container(self, node: NodePath) -> NodeInfo:
        """The container ``node``; ContainerNotFound if it is missing or holds data."""
        try:
            found = self.info(node)
        except VOSpaceFault:
            raise VOSpaceFault("ContainerNotFound", self.config.node_uri(node.path)) from None
        if not found.is_container:
            raise VOSpaceFault("ContainerNotFound", self.config.node_uri(node.path))
        return found

    def children(self, node: NodePath, start: str | None, limit: int | None) -> list[NodeInfo]:
        """Children in name order, from ``start`` (inclusive) on, at most ``limit``."""
        if limit == 0:
            return []
        names = sorted(os.listdir(self.locate(node)))
        if not node.segments:
            names = [n for n in names if n != STATE_DIR]
        if start is not None:
            names = [n for n in names if n >= start]
        found: list[NodeInfo] = []
        for name in names:
            try:
                found.append(self.info(node.child(name)))
            except VOSpaceFault:
                continue  # vanished, or a symlink out of the root: not a node
            if limit is not None and len(found) >= limit:
                break
        return found

    # -- access -------------------------------------------------------------------------------

    def is_public(self, node: NodePath) -> bool:
        return self._props.get(node.path, {}).get(CORE + "ispublic") == "true"

    def may_read(self, user: str | None, node: NodePath) -> bool:
        if node.home_owner is None:
            return user is not None or not node.segments
        return node.home_owner == user or self.is_public(node)

    def may_write(self, user: str | None, node: NodePath) -> bool:
        """Users write inside their home; the home node itself only takes property updates."""
        return user is not None and node.home_owner == user and len(node.segments) >= 3

    def ensure_home(self, user: str) -> None:
        (self.root / "home" / user).mkdir(exist_ok=True)

    # -- properties ---------------------------------------------------------------------------

    def properties(self, found: NodeInfo) -> list[Property]:
        node = found.path
        props = [Property(CORE + "date", vospace_date(found.mtime), True)]
        owner = node.home_owner
        if owner is not None:
            props.append(Property(CORE + "creator", owner, True))
        if found.is_container:
            if len(node.segments) == 2 and owner is not None:
                props.append(Property(CORE + "length", str(self.usage(owner)), True))
                props.append(Property(CORE + "quota", str(self.config.quota_bytes), True))
        else:
            props.append(Property(CORE + "length", str(found.size), True))
            props.append(Property(CORE + "MD5", self.md5(found), True))
        stored = dict(self._props.get(node.path, {}))
        if not found.is_container and CORE + "type" not in stored:
            guessed = mimetypes.guess_type(node.name)[0]
            if guessed:
                stored[CORE + "type"] = guessed
        stored.setdefault(CORE + "ispublic", "false")
        props.extend(Property(uri, value, False) for uri, value in sorted(stored.items()))
        return props

    def set_properties(self, node: NodePath, changes: dict[str, str | None]) -> None:
        """Apply client changes (None deletes); read-only properties are silently kept."""
        current = self._props.setdefault(node.path, {})
        for uri, value in changes.items():
            if uri in READ_ONLY:
                continue
            if value is None:
                current.pop(uri, None)
            else:
                current[uri] = value
        if not current:
            del self._props[node.path]
        self._save_props()

    def _forget(self, node: NodePath, moved_to: NodePath | None = None) -> None:
        prefix = node.path.rstrip("/") + "/"
        for key in [k for k in self._props if k == node.path or k.startswith(prefix)]:
            value = self._props.pop(key)
            if moved_to is not None:
                self._props[moved_to.path + key[len(node.path) :]] = value
        self._save_props()

    def _save_props(self) -> None:
        tmp = self._props_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._props, sort_keys=True))
        os.replace(tmp, self._props_file)

    def md5(self, found: NodeInfo) -> str:
        target = self.locate(found.path)
        st = target.stat()
        cached = self._md5.get(found.path.path)
        if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
            return cached[2]
        digest = hashlib.md5()
        with target.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        self._md5[found.path.path] = (st.st_size, st.st_mtime_ns, digest.hexdigest())
        return digest.hexdigest()

    # -- changes ------------------------------------------------------------------------------

    def _check_new(self, node: NodePath) -> Path:
        self.container(node.parent)
        if self.exists(node):
            raise VOSpaceFault("DuplicateNode", self.config.node_uri(node.path))
        return self.locate(node)

    def make_container(self, node: NodePath) -> None:
        self._check_new(node).mkdir()

    def make_data(self, node: NodePath) -> None:
        self._check_new(node).touch()

    def delete(self, node: NodePath) -> None:
        """Delete one node; a container must be empty (as Cavern refuses otherwise)."""
        found = self.info(node)
        target = self.locate(node)
        if found.is_container:
            if any(True for _ in self.children(node, None, 1)):
                raise VOSpaceFault("InvalidArgument", f"container node '{node.name}' is not empty")
            target.rmdir()
        else:
            target.unlink()
        self._forget(node)

    def delete_tree(self, node: NodePath) -> tuple[int, int]:
        """Delete ``node`` and everything below it; returns (deleted, failed) node counts."""
        found = self.info(node)
        deleted = failed = 0
        if found.is_container:
            for child in self.children(node, None, None):
                ok, bad = self.delete_tree(child.path)
                deleted, failed = deleted + ok, failed + bad
        try:
            self.delete(node)
            deleted += 1
        except (VOSpaceFault, OSError):
            failed += 1
        return deleted, failed

    def move(self, source: NodePath, destination: NodePath) -> None:
        self.info(source)
        target = self._check_new(destination)
        os.replace(self.locate(source), target)
        self._forget(source, moved_to=destination)

    def usage(self, user: str) -> int:
        total = 0
        for folder, _dirs, files in os.walk(self.root / "home" / user):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except FileNotFoundError:
                    continue
        return total

    def upload(self, node: NodePath, expected: int | None = None) -> Upload:
        """Start writing the bytes of data node ``node`` (created or replaced on commit)."""
        owner = node.home_owner
        if owner is None:
            raise VOSpaceFault("PermissionDenied", self.config.node_uri(node.path))
        self.container(node.parent)
        replaced = 0
        if self.exists(node):
            found = self.info(node)
            if found.is_container:
                raise VOSpaceFault("DuplicateNode", f"{node.path} is a container")
            replaced = found.size
        allowance = self.config.quota_bytes - (self.usage(owner) - replaced)
        if expected is not None and expected > allowance:
            raise VOSpaceFault("RequestEntityTooLarge", f"quota exceeded for {owner}")
        return Upload(self, node, allowance)


class Upload:
    """Bytes on their way into one data node, within the owner's remaining quota."""

    def __init__(self, tree: NodeTree, node: NodePath, allowance: int) -> None:
        self.tree = tree
        self.node = node
        self.allowance = allowance
        self.written = 0
        self._digest = hashlib.md5()
        fd, name = tempfile.mkstemp(dir=tree.state / "uploads")
        self._tmp = Path(name)
        self._fh = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        if self.written + len(chunk) > self.allowance:
            self.discard()
            raise VOSpaceFault(
                "RequestEntityTooLarge", f"quota exceeded for {self.node.home_owner}"
            )
        self._fh.write(chunk)
        self._digest.update(chunk)
        self.written += len(chunk)

    @property
    def md5(self) -> str:
        return self._digest.hexdigest()

    def commit(self) -> str:
        """Make the bytes the node's content; returns their MD5 (hex)."""
        self._fh.close()
        target = self.tree.locate(self.node)
        if not self.tree.exists(self.node.parent):
            self.discard()
            raise VOSpaceFault(
                "ContainerNotFound", self.tree.config.node_uri(self.node.parent.path)
            )
        os.replace(self._tmp, target)
        st = target.stat()
        self.tree._md5[self.node.path] = (st.st_size, st.st_mtime_ns, self.md5)
        return self.md5

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)
