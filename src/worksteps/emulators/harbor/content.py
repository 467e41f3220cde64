"""Deterministic image bytes: layers, config blob and manifest, named by their real digests.

Layer bytes are never held whole: chunk ``i`` of a layer is its 8-byte index followed by a
fixed pseudo-random block seeded from the image name, tag and layer position, so any chunk
can be produced on demand and two emulators configured alike serve identical bytes. Digests
are computed once, lazily, by streaming the chunks through sha256.

The layers are opaque bytes declared as uncompressed tar layers (so ``diff_ids`` equal the
layer digests); they are not extractable file systems.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from functools import cached_property

from worksteps.emulators.harbor.config import ImageSpec

__all__ = [
    "CHUNK",
    "DOCKER_MANIFEST",
    "OCI_MANIFEST",
    "Blob",
    "ImageContent",
    "sha256_digest",
]

CHUNK = 1 << 20
CREATED = "2025-01-01T00:00:00Z"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

_TYPES = {
    "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
    "docker": (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Blob:
    """Bytes named by their sha256 digest: either held (``data``) or generated (``seed``)."""

    def __init__(
        self, media_type: str, *, data: bytes | None = None, seed: str = "", size: int = 0
    ) -> None:
        self.media_type = media_type
        self._data = data
        self._seed = seed
        self.size = len(data) if data is not None else size

    @cached_property
    def _block(self) -> bytes:
        return random.Random(self._seed).randbytes(max(8, min(CHUNK, self.size)))

    def chunks(self, *, corrupt: bool = False) -> Iterator[bytes]:
        """The blob's bytes in order; ``corrupt`` flips the first byte (digest no longer fits)."""
        first = True
        for chunk in self._raw_chunks():
            if corrupt and first and chunk:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            first = False
            yield chunk

    def _raw_chunks(self) -> Iterator[bytes]:
        if self._data is not None:
            yield self._data
            return
        head, tail = int.from_bytes(self._block[:8], "big"), self._block[8:]
        for index in range(-(-self.size // CHUNK)):
            length = min(CHUNK, self.size - index * CHUNK)
            yield ((head ^ index).to_bytes(8, "big") + tail)[:length]

    @cached_property
    def digest(self) -> str:
        hasher = hashlib.sha256()
        for chunk in self._raw_chunks():
            hasher.update(chunk)
        return "sha256:" + hasher.hexdigest()

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class ImageContent:
    """The manifest, config blob and layers of one configured image."""

    def __init__(self, spec: ImageSpec) -> None:
        self.spec = spec
        self.manifest_media_type, self._config_type, layer_type = _TYPES[spec.media_type]
        key = f"{spec.name}:{spec.tag}"
        self.layers = [
            Blob(layer_type, seed=f"{key}#{index}:{size}", size=size)
            for index, size in enumerate(spec.layers)
        ]

    @cached_property
    def config(self) -> Blob:
        diff_ids = [layer.digest for layer in self.layers]
        document = {
            "architecture": self.spec.architecture,
            "os": self.spec.os,
            "created": CREATED,
            "config": {"Labels": {"org.opencontainers.image.title": self.spec.name}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": CREATED, "created_by": "worksteps emulator"} for _ in diff_ids],
        }
        return Blob(self._config_type, data=json.dumps(document, sort_keys=True).encode())

    @cached_property
    def manifest(self) -> bytes:
        document = {
            "schemaVersion": 2,
            "mediaType": self.manifest_media_type,
            "config": self.config.descriptor(),
            "layers": [layer.descriptor() for layer in self.layers],
        }
        return json.dumps(document, indent=3).encode()

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def blobs(self) -> list[Blob]:
        """Config first, then layers: the order a copy moves them in."""
        return [self.config, *self.layers]

    @property
    def size(self) -> int:
        """Harbor's artifact size: manifest plus config plus layers."""
        return len(self.manifest) + sum(blob.size for blob in self.blobs)

    def blob(self, digest: str) -> Blob | None:
        return next((blob for blob in self.blobs if blob.digest == digest), None)

    def is_corrupt(self, blob: Blob) -> bool:
        return any(self.layers[i] is blob for i in self.spec.corrupt_layers)
