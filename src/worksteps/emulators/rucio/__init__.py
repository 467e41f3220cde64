"""Emulated Rucio: the REST API rucio-clients speaks, over a time-based transfer model.

config      RucioConfig: RSEs (local directories), file and dataset DIDs, links, failures
content     replica bytes on disk: deterministic paths, generated or copied content
expressions RSE expressions (``SITE-A|site=b&rse_type=DISK``)
rules       Rule and Lock, whose states are pure functions of time
catalogue   RucioCatalogue: DIDs, replicas, rules, scheduling (shared with PrepareData)
auth        tokens from ``/auth/userpass``
wire        Rucio's JSON shapes
app         create_app(config) -> ASGI app wrapped in FaultInjector
"""

from worksteps.emulators.rucio.app import create_app
from worksteps.emulators.rucio.catalogue import DidInfo, RucioCatalogue
from worksteps.emulators.rucio.config import (
    DatasetConfig,
    FileConfig,
    Identity,
    LinkConfig,
    RSEConfig,
    RucioConfig,
    TransferFailure,
)
from worksteps.emulators.rucio.content import deterministic_path
from worksteps.emulators.rucio.rules import Lock, RucioError, Rule

__all__ = [
    "DatasetConfig",
    "DidInfo",
    "FileConfig",
    "Identity",
    "LinkConfig",
    "Lock",
    "RSEConfig",
    "RucioCatalogue",
    "RucioConfig",
    "RucioError",
    "Rule",
    "TransferFailure",
    "create_app",
    "deterministic_path",
]
