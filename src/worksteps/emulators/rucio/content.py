"""The bytes of emulated replicas: where a replica lives on an RSE and what it contains.

A replica's content is a pure function of its file: either the bytes of a configured real source
file, or a generated body (a ``scope:name`` header line followed by zeros, written as a sparse
file so gigabyte files cost nothing). Because content never depends on which RSE a copy came
from, "transferring" a replica is writing that content anew at the destination, and every copy
carries the same Adler-32 checksum the catalogue advertises.

Files appear atomically (written under a temporary name, then renamed), so a reader never sees
a partial replica and concurrent writers of the same replica are harmless.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileContent", "deterministic_path", "write_content"]

_ADLER_MOD = 65521
_CHUNK = 1 << 20


def deterministic_path(scope: str, name: str) -> str:
    """Rucio's default (``hash``) RSE-relative path: ``scope/ab/cd/name`` from md5(scope:name)."""
    digest = hashlib.md5(f"{scope}:{name}".encode(), usedforsecurity=False).hexdigest()
    return f"{scope}/{digest[0:2]}/{digest[2:4]}/{name}"


@dataclass(frozen=True)
class FileContent:
    """How to produce one file's bytes, and their size and checksum."""

    scope: str
    name: str
    size: int
    source: Path | None = None

    @property
    def header(self) -> bytes:
        return f"{self.scope}:{self.name}\n".encode()[: self.size]

    def adler32(self) -> str:
        """Adler-32 as Rucio writes it: eight lowercase hex digits."""
        if self.source is not None:
            value = 1
            with self.source.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    value = zlib.adler32(chunk, value)
        else:
            # Zeros leave the running sum ``a`` unchanged and add ``a`` to ``b`` once per byte,
            # so the checksum of the sparse body is closed-form: no need to read a gigabyte.
            head = zlib.adler32(self.header)
            a, b = head & 0xFFFF, head >> 16
            b = (b + (self.size - len(self.header)) * a) % _ADLER_MOD
            value = (b << 16) | a
        return f"{value:08x}"


def write_content(content: FileContent, path: Path) -> None:
    """Make ``path`` hold the file's bytes, unless a file of the right size is already there."""
    if path.is_file() and path.stat().st_size == content.size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            if content.source is not None:
                with content.source.open("rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
            else:
                out.write(content.header)
                out.truncate(content.size)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
