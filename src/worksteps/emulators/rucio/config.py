"""Configuration of the Rucio emulator: storage elements, the file catalogue, links, failures.

Invariants checked at load time (a bad configuration refuses to start rather than misbehave
later): RSE names follow Rucio's pattern and are unique; every replica, dataset member, link and
failure names a known RSE or file; a file's size is given directly or by a real source file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from worksteps.emulators.faults import FaultRule

__all__ = [
    "DatasetConfig",
    "FileConfig",
    "Identity",
    "LinkConfig",
    "RSEConfig",
    "RucioConfig",
    "TransferFailure",
]

RSE_NAME = r"^[A-Z0-9]+([_-][A-Z0-9]+)*$"
SCOPE = r"^[a-zA-Z_\-.0-9]{1,25}$"
DID_NAME = r"^[/A-Za-z0-9][/A-Za-z0-9.\-_]{0,249}$"

MB = 1_000_000


class RSEConfig(BaseModel):
    """One Rucio Storage Element, backed by a local directory."""

    name: str = Field(pattern=RSE_NAME, description="RSE name, e.g. SRC-A-T1.")
    site: str = Field(min_length=1, description="The site the RSE belongs to (attribute `site`).")
    root: Path = Field(description="Local directory holding this RSE's replica files.")
    prefix: str | None = Field(
        None, description="PFN prefix (scheme://host/path); `file://<root>` when absent."
    )
    rse_type: Literal["DISK", "TAPE"] = "DISK"
    attributes: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra RSE attributes, usable in RSE expressions."
    )

    @property
    def pfn_prefix(self) -> str:
        return (self.prefix or self.root.resolve().as_uri()).rstrip("/")


class FileConfig(BaseModel):
    """A file DID of the catalogue and the RSEs holding it from the start."""

    scope: str = Field(pattern=SCOPE)
    name: str = Field(pattern=DID_NAME)
    bytes: int | None = Field(None, ge=0, description="Size; taken from `source` when absent.")
    source: Path | None = Field(
        None, description="A real file whose bytes the replicas carry; generated when absent."
    )
    rses: list[str] = Field(default_factory=list, description="RSEs holding a replica at start.")

    @model_validator(mode="after")
    def _size_known(self) -> FileConfig:
        if self.source is None and self.bytes is None:
            raise ValueError(f"file {self.scope}:{self.name} needs `bytes` or `source`")
        if self.source is not None:
            if not self.source.is_file():
                raise ValueError(f"source {self.source} of {self.scope}:{self.name} is no file")
            size = self.source.stat().st_size
            if self.bytes is not None and self.bytes != size:
                raise ValueError(
                    f"{self.scope}:{self.name}: bytes={self.bytes} but {self.source} has {size}"
                )
            self.bytes = size
        return self


class DatasetConfig(BaseModel):
    """A dataset DID: a named, closed collection of files."""

    scope: str = Field(pattern=SCOPE)
    name: str = Field(pattern=DID_NAME)
    files: list[str] = Field(
        min_length=1, description="Member files as `scope:name`, or a bare name in this scope."
    )

    def members(self) -> list[tuple[str, str]]:
        out = []
        for ref in self.files:
            scope, _, name = ref.rpartition(":")
            out.append((scope or self.scope, name))
        return out


class LinkConfig(BaseModel):
    """Throughput of transfers from one RSE to another."""

    source: str
    destination: str
    bytes_per_second: float = Field(gt=0)


class TransferFailure(BaseModel):
    """Transfers matching every given field fail, leaving their rule STUCK."""

    did: str | None = Field(None, description="`scope:name` glob of the file; any when absent.")
    source: str | None = Field(None, description="Source RSE; any when absent.")
    destination: str | None = Field(None, description="Destination RSE; any when absent.")
    message: str = "TRANSFER [70] DESTINATION OVERWRITE error: injected transfer failure"


class Identity(BaseModel):
    """A userpass identity mapped to an account."""

    account: str = Field(pattern=r"^[a-z0-9-_]{1,25}$")
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class RucioConfig(BaseModel):
    """Everything one emulated Rucio instance knows at start-up."""

    rses: list[RSEConfig] = Field(min_length=1)
    files: list[FileConfig] = Field(default_factory=list)
    datasets: list[DatasetConfig] = Field(default_factory=list)
    links: list[LinkConfig] = Field(default_factory=list)
    default_bandwidth: float = Field(100 * MB, gt=0, description="Bytes/s of unlisted links.")
    transfer_latency: float = Field(
        0.0, ge=0, description="Seconds a rule waits before its first transfer starts."
    )
    failures: list[TransferFailure] = Field(default_factory=list)
    identities: list[Identity] = Field(
        default_factory=lambda: [Identity(account="root", username="ddmlab", password="secret")]
    )
    bearer_tokens: dict[str, str] = Field(
        default_factory=dict, description="Pre-issued tokens (e.g. OIDC) mapped to accounts."
    )
    token_lifetime: int = Field(3600, gt=0, le=30 * 86400, description="Seconds.")
    state_file: Path | None = Field(
        None, description="JSON file keeping rules across emulator restarts; memory only if absent."
    )
    faults: list[FaultRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_known(self) -> RucioConfig:
        rses = [r.name for r in self.rses]
        if len(set(rses)) != len(rses):
            raise ValueError("RSE names must be unique")
        known_rses = set(rses)
        files = {(f.scope, f.name) for f in self.files}
        if len(files) != len(self.files):
            raise ValueError("file DIDs must be unique")
        for f in self.files:
            for rse in f.rses:
                if rse not in known_rses:
                    raise ValueError(f"file {f.scope}:{f.name} names unknown RSE {rse}")
        for d in self.datasets:
            if (d.scope, d.name) in files:
                raise ValueError(f"dataset {d.scope}:{d.name} clashes with a file")
            for member in d.members():
                if member not in files:
                    raise ValueError(
                        f"dataset {d.scope}:{d.name}: unknown file {member[0]}:{member[1]}"
                    )
        for link in self.links:
            for rse in (link.source, link.destination):
                if rse not in known_rses:
                    raise ValueError(f"link names unknown RSE {rse}")
        for failure in self.failures:
            for named in (failure.source, failure.destination):
                if named is not None and named not in known_rses:
                    raise ValueError(f"failure names unknown RSE {named}")
        return self
