"""An emulated SRCNet Software Discovery service listing the federation's images."""

from worksteps.emulators.softwarediscovery.app import create_app
from worksteps.emulators.softwarediscovery.config import (
    SoftwareDiscoveryConfig,
    SoftwareEntry,
    entries_from_images,
)

__all__ = ["SoftwareDiscoveryConfig", "SoftwareEntry", "create_app", "entries_from_images"]
