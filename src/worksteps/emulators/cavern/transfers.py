"""What async jobs do: node-to-node copy and move, pullToVoSpace, recursive delete.

Copies and pulls stream through :class:`~.tree.Upload` (quota enforced while streaming) at
``config.bandwidth`` bytes per second, reporting progress after every chunk, so a caller
polling the job sees EXECUTING with growing byte counts before COMPLETED.

``pullToVoSpace`` (copy an http URL into a node) is an EMULATOR-ONLY extension: real Cavern
throws ``UnsupportedOperation`` for it. It is on unless ``emulate_pull_to_vospace`` is off,
and it only fetches from ``pull_hosts`` (loopback by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from .config import CavernConfig
from .documents import Transfer
from .errors import VOSpaceFault
from .jobs import Job
from .paths import NodePath, parse_node_uri
from .tree import NodeTree, Upload

__all__ = ["JobRunner"]

_CHUNK = 64 * 1024


class JobRunner:
    """Executes one job to its end; a :class:`VOSpaceFault` ends it in ERROR."""

    def __init__(self, config: CavernConfig, tree: NodeTree) -> None:
        self.config = config
        self.tree = tree
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        """One client for every pull, made at the first: a client's TLS context alone costs
        ~20-50 ms of CPU, which would otherwise be added to every pull's emulated time."""
        if self._client is None:
            timeout = httpx.Timeout(30.0, read=60.0)
            self._client = httpx.AsyncClient(trust_env=False, timeout=timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, job: Job) -> None:
        if job.kind == "delete":
            await self._delete(job)
            return
        transfer = job.transfer
        if transfer is None:
            raise VOSpaceFault("InternalFault", f"job {job.id} has no transfer")
        if transfer.is_node_to_node:
            await self._node_to_node(job, transfer)
        elif transfer.direction == "pullToVoSpace":
            await self._pull(job, transfer)
        else:
            raise VOSpaceFault("UnsupportedOperation", f"async {transfer.direction}")

    def _node(self, uri: str) -> NodePath:
        return parse_node_uri(uri, self.config.vos_authority)

    def _require_write(self, user: str, node: NodePath) -> None:
        if not self.tree.may_write(user, node):
            raise VOSpaceFault("PermissionDenied", self.config.node_uri(node.path))

    async def _delete(self, job: Job) -> None:
        target = job.target
        if target is None:
            raise VOSpaceFault("InternalFault", f"job {job.id} has no target")
        self.tree.info(target)
        self._require_write(job.owner, target)
        deleted, failed = self.tree.delete_tree(target)
        job.results = {"successcount": f"final:{deleted}", "errorcount": f"final:{failed}"}

    async def _node_to_node(self, job: Job, transfer: Transfer) -> None:
        source = self._node(transfer.target)
        destination = self._node(transfer.direction)
        if not self.tree.may_read(job.owner, source):
            raise VOSpaceFault("PermissionDenied", transfer.target)
        found = self.tree.info(source)
        if self.tree.exists(destination) and self.tree.info(destination).is_container:
            destination = destination.child(source.name)  # into the container, as VOSpace says
        self._require_write(job.owner, destination)
        if source.is_within(destination) or destination.is_within(source):
            raise VOSpaceFault("InvalidArgument", "source and destination overlap")
        if not transfer.keep_bytes:
            self._require_write(job.owner, source)
            self.tree.move(source, destination)
            return
        if self.tree.exists(destination):
            raise VOSpaceFault("DuplicateNode", self.config.node_uri(destination.path))
        files: list[tuple[NodePath, NodePath, int]] = []
        self._plan_copy(source, destination, found.is_container, files)
        total = sum(size for _, _, size in files)
        done = 0
        job.report(0, total)
        for src, dst, size in files:
            upload = self.tree.upload(dst, expected=size)
            try:
                done = await self._pump(job, self._read(src), upload, done, total)
                upload.commit()
            finally:
                upload.discard()

    def _plan_copy(
        self,
        source: NodePath,
        destination: NodePath,
        is_container: bool,
        files: list[tuple[NodePath, NodePath, int]],
    ) -> None:
        """Create the destination containers now; list the files to stream afterwards."""
        if not is_container:
            files.append((source, destination, self.tree.info(source).size))
            return
        self.tree.make_container(destination)
        for child in self.tree.children(source, None, None):
            self._plan_copy(
                child.path, destination.child(child.path.name), child.is_container, files
            )

    async def _read(self, node: NodePath) -> AsyncIterator[bytes]:
        with self.tree.locate(node).open("rb") as fh:
            while chunk := fh.read(self._chunk_size()):
                yield chunk

    def _chunk_size(self) -> int:
        if self.config.bandwidth is None:
            return _CHUNK
        return max(1024, min(_CHUNK, int(self.config.bandwidth / 20)))

    async def _pump(
        self,
        job: Job,
        chunks: AsyncIterator[bytes],
        upload: Upload,
        done: int,
        total: int | None,
    ) -> int:
        """Move ``chunks`` into ``upload`` at the configured bandwidth; returns bytes done."""
        loop = asyncio.get_running_loop()
        started, base = loop.time(), done
        async for chunk in chunks:
            upload.write(chunk)
            done += len(chunk)
            job.report(done, total)
            if self.config.bandwidth is not None:
                due = started + (done - base) / self.config.bandwidth
                if (delay := due - loop.time()) > 0:
                    await asyncio.sleep(delay)
        return done

    async def _pull(self, job: Job, transfer: Transfer) -> None:
        if not self.config.emulate_pull_to_vospace:
            raise VOSpaceFault("UnsupportedOperation", "pullToVoSpace")
        destination = self._node(transfer.target)
        self._require_write(job.owner, destination)
        sources = [p.endpoint for p in transfer.protocols if p.endpoint]
        if not sources:
            raise VOSpaceFault("InvalidArgument", "pullToVoSpace needs a protocol endpoint")
        source = sources[0]
        parts = urlsplit(source)
        if parts.scheme not in ("http", "https") or parts.hostname not in self.config.pull_hosts:
            raise VOSpaceFault("PermissionDenied", f"source host not allowed: {source}")
        try:
            async with self._http().stream("GET", source) as response:
                if response.status_code != 200:
                    raise VOSpaceFault(
                        "TransferFailed", f"{source} answered HTTP {response.status_code}"
                    )
                length = response.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                upload = self.tree.upload(destination, expected=total)
                try:
                    job.report(0, total)
                    chunks = response.aiter_bytes(self._chunk_size())
                    done = await self._pump(job, chunks, upload, 0, total)
                    if total is not None and done != total:
                        raise VOSpaceFault("TransferFailed", f"got {done} of {total} bytes")
                    upload.commit()
                finally:
                    upload.discard()
        except httpx.HTTPError as exc:
            raise VOSpaceFault("TransferFailed", f"{source}: {exc}") from exc
