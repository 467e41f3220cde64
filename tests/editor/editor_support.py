"""Editor test fixtures: the editor served on loopback (one per module and engine), the
Software Discovery emulator, and a document server standing in for "some URL on the web" (it
serves what a test puts there and records the headers it was sent).

tests/editor/conftest.py registers the fixtures. Nothing here imports the root ``conftest``
module by name: with several conftest.py files that name is ambiguous.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from worksteps.core.auth import AuthSettings
from worksteps.core.serving import ServedApp, start_in_thread
from worksteps.editor.api import create_app
from worksteps.editor.settings import EditorSettings, FetchSettings
from worksteps.emulators.rig.catalogue import DEFAULT_IMAGES
from worksteps.emulators.softwarediscovery import (
    SoftwareDiscoveryConfig,
    SoftwareEntry,
    entries_from_images,
)
from worksteps.emulators.softwarediscovery import (
    create_app as create_discovery,
)

REGISTRY = "images.example.org"
SHARED = Path(__file__).resolve().parents[3] / "shared"
SAMPLES = SHARED / "spec" / "software-discovery" / "sample"
PG_DSN = os.environ.get("WORKSTEPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


class Issuer(Protocol):
    """The root conftest's ``oidc`` fixture, as far as these tests use it."""

    settings: AuthSettings

    def headers(self, subject: str, **claims: Any) -> dict[str, str]: ...


def _pg_admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@dataclass
class Page:
    body: bytes
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    chunks: int = 0  # > 0: streamed in this many chunks, without a Content-Length


@dataclass
class Documents:
    """Serves ``pages`` at two origins: ``url`` (trusted by the editor) and ``untrusted``."""

    url: str = ""
    untrusted: str = ""
    pages: dict[str, Page] = field(default_factory=dict)
    seen: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    closing: bool = False

    def put(self, path: str, body: bytes | str, **kwargs: Any) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = Page(data, **kwargs)
        return f"{self.url}{path}"

    def app(self) -> Starlette:
        async def serve(request: Request) -> Response:
            path = request.url.path
            self.seen.setdefault(path, []).append(dict(request.headers))
            page = self.pages.get(path)
            if page is None:
                return Response(b"not here", status_code=404)
            if page.hang:  # until the client gives up, or the server is stopped
                for _ in range(600):
                    if self.closing:
                        break
                    await asyncio.sleep(0.05)
            if page.chunks:
                size = -(-len(page.body) // page.chunks)
                parts = [page.body[i : i + size] for i in range(0, len(page.body), size)]

                async def stream() -> AsyncIterator[bytes]:
                    for part in parts:
                        yield part

                return StreamingResponse(stream(), media_type=page.content_type)
            return Response(
                page.body,
                status_code=page.status,
                media_type=page.content_type,
                headers=page.headers,
            )

        return Starlette(routes=[Route("/{path:path}", serve, methods=["GET"])])


@pytest.fixture(scope="module")
def documents() -> Iterator[Documents]:
    docs = Documents()
    app = docs.app()
    served = [start_in_thread(app), start_in_thread(app)]
    docs.url, docs.untrusted = served[0].url, served[1].url
    yield docs
    docs.closing = True
    for server in served:
        server.stop()


@pytest.fixture(scope="module")
def discovery() -> Iterator[str]:
    """The Software Discovery emulator listing the rig's images and the SRCNet samples."""
    entries = entries_from_images(DEFAULT_IMAGES, REGISTRY)
    for path in sorted(SAMPLES.rglob("*.json")):
        entries.append(
            SoftwareEntry.from_document(f"sample-{path.stem}", json.loads(path.read_text()))
        )
    served = start_in_thread(create_discovery(SoftwareDiscoveryConfig(entries=entries)))
    yield served.url
    served.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def editor_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database per module and engine (each test works as its own users)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('editor')}/editor.sqlite"
        return
    name = f"wse_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Editor:
    url: str
    settings: EditorSettings
    oidc: Issuer
    files: Path
    server: ServedApp

    def client(self, user: str, **claims: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers=self.oidc.headers(user, **claims), timeout=20
        )


@pytest.fixture(scope="module")
def editor(
    editor_database: str,
    oidc: Issuer,
    documents: Documents,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Editor]:
    files = tmp_path_factory.mktemp("files")
    settings = EditorSettings(
        database_url=editor_database,
        auth=oidc.settings,
        image_registry=REGISTRY,
        fetch=FetchSettings(
            timeout=1.0,
            max_bytes=64 * 1024,
            trusted_origins=[documents.url],
            allowed_file_roots=[files, SAMPLES],
        ),
    )
    server = start_in_thread(create_app(settings))
    yield Editor(server.url, settings, oidc, files, server)
    server.stop()


def user() -> str:
    """A user name no other test uses (the module's database is shared)."""
    return f"user-{uuid.uuid4().hex[:8]}"
