"""Fetching the documents the URL-based creation modes name, under the editor's rules.

Policy (all here, none in the creation modes):

- ``http``/``https`` and ``file`` only; a redirect may go to ``http``/``https`` only, at most
  ``max_redirects`` times, each target checked again;
- one overall deadline (``timeout``) and a size bound (``max_bytes``) counted while reading, so
  a slow or endless body costs no more than that;
- the caller's bearer token goes to a URL only when its origin is one of ``trusted_origins``
  (checked again after every redirect);
- ``file://`` only under ``allowed_file_roots`` after resolving symlinks; ``..`` is refused;
- every failure is :class:`~worksteps.core.errors.InvalidInput` (422) naming the field the URL
  came in, with a reason a user can act on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from worksteps.core.auth import Principal
from worksteps.core.errors import BadRequest, FieldError, InvalidInput, UnsupportedMedia
from worksteps.editor.settings import FetchSettings, origin_of
from worksteps.schema.codecs import MediaType, decode, media_type_of

__all__ = ["Fetched", "Fetcher", "unfetchable"]

_ACCEPT = "application/json, application/yaml;q=0.9, application/xml;q=0.8, */*;q=0.5"


def unfetchable(field: str, reason: str, detail: str | None = None) -> InvalidInput:
    return InvalidInput(
        detail or f"The URL in {field} cannot be used: {reason}.",
        [FieldError(field, reason)],
        reason="unusable-url",
    )


@dataclass(frozen=True)
class Fetched:
    """A fetched document: the URL it finally came from, its media type and bytes."""

    url: str
    content_type: str | None
    body: bytes

    def document(self, field: str) -> dict[str, Any] | list[Any]:
        """The body as JSON-like data (JSON, YAML or XML), or 422 saying why it is not."""
        try:
            media = media_type_of(self.content_type, self.body)
        except UnsupportedMedia:
            media = media_type_of(None, self.body)
        body = self.body
        listing = media is MediaType.JSON and body.lstrip()[:1] == b"["
        if listing:  # a list at the top: read it inside a mapping, with every check of decode
            body = b'{"items":' + body + b"}"
        try:
            document = decode(body, media)
        except BadRequest as exc:
            raise unfetchable(field, f"the document cannot be read: {exc.detail}") from None
        items: list[Any] = document["items"] if listing else []
        return items if listing else document


class Fetcher:
    """Fetches URLs for one editor; shares one connection pool."""

    def __init__(self, rules: FetchSettings, *, client: httpx.AsyncClient | None = None) -> None:
        self.rules = rules
        self._client = client or httpx.AsyncClient(follow_redirects=False, trust_env=False)
        self._own_client = client is None

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def fetch(self, url: str, field: str, principal: Principal | None = None) -> Fetched:
        """The document at ``url``; ``field`` names where the URL came from for errors."""
        url = url.strip()
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file":
            return await asyncio.to_thread(self._read_file, url, field)
        if scheme not in ("http", "https"):
            raise unfetchable(field, f"scheme {scheme or 'none'!r} is not supported")
        try:
            async with asyncio.timeout(self.rules.timeout):
                return await self._get(url, field, principal)
        except TimeoutError:
            raise unfetchable(field, f"no answer within {self.rules.timeout:g} s") from None

    async def _get(self, url: str, field: str, principal: Principal | None) -> Fetched:
        for _ in range(self.rules.max_redirects + 1):
            self._check_host(url, field)
            headers = {"Accept": _ACCEPT}
            if principal is not None and origin_of(url) in self.rules.trusted_origins:
                headers.update(principal.authorization)
            try:
                async with self._client.stream("GET", url, headers=headers) as answer:
                    if answer.is_redirect:
                        target = urljoin(url, answer.headers.get("location", ""))
                        if urlsplit(target).scheme.lower() not in ("http", "https"):
                            raise unfetchable(field, "it redirects to another scheme")
                        url = target
                        continue
                    if answer.status_code >= 400:
                        raise unfetchable(field, f"it answered HTTP {answer.status_code}")
                    body = await self._read_bounded(answer, field)
                    return Fetched(str(answer.url), answer.headers.get("content-type"), body)
            except httpx.InvalidURL:
                raise unfetchable(field, "it is not a valid URL") from None
            except httpx.TransportError as exc:
                raise unfetchable(field, f"it cannot be reached ({type(exc).__name__})") from None
        raise unfetchable(field, f"more than {self.rules.max_redirects} redirects")

    def _check_host(self, url: str, field: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        if not host:
            raise unfetchable(field, "the URL has no host")
        allowed = self.rules.allowed_hosts
        if allowed is not None and host not in {h.lower() for h in allowed}:
            raise unfetchable(field, f"host {host!r} is not one the editor may fetch from")

    async def _read_bounded(self, answer: httpx.Response, field: str) -> bytes:
        limit = self.rules.max_bytes
        declared = answer.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise unfetchable(field, f"the document is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise unfetchable(field, f"the document is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _read_file(self, url: str, field: str) -> Fetched:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise unfetchable(field, "a file:// URL must name a local path")
        text = unquote(parts.path)
        if "\x00" in text:
            raise unfetchable(field, "a file:// path must not contain a NUL character")
        path = PurePosixPath(text)
        if not path.is_absolute() or ".." in path.parts:
            raise unfetchable(field, "a file:// path must be absolute, without '..'")
        try:
            real = Path(path).resolve(strict=True)
        except (OSError, ValueError):
            raise unfetchable(field, "no such file") from None
        roots = [root.resolve() for root in self.rules.allowed_file_roots]
        if not any(real.is_relative_to(root) for root in roots):
            raise unfetchable(field, "file:// URLs must lie under an allowed directory")
        if not real.is_file():
            raise unfetchable(field, "it is not a file")
        with real.open("rb") as handle:
            body = handle.read(self.rules.max_bytes + 1)
        if len(body) > self.rules.max_bytes:
            raise unfetchable(field, f"the document is larger than {self.rules.max_bytes} bytes")
        return Fetched(real.as_uri(), None, body)
