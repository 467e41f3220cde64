"""A whole emulated site on loopback, configured so the real site adapters work end to end.

``start_site_rig(name, root, ...)`` starts the site's Skaha, Rucio, PrepareData, Cavern and
Harbor emulators, an upstream Harbor and the HTTP door of its storage elements, all sharing
one service account and one directory layout, and returns a :class:`SiteRig` whose
``services_settings`` feed :func:`worksteps.site.services.open_site_services`.

    catalogue   demo datasets (scope ``demo``) and images, and their emulator configurations
    door        HTTP access to replica files (what Rucio's PFNs point at)
    shared      what sites share: one Rucio, its door, the upstream (central) Harbor
    site        SiteRig, start_site and start_site_rig: layout, start order, settings, stop
"""

from worksteps.emulators.rig.catalogue import (
    DEFAULT_DATASETS,
    DEFAULT_FILES,
    DEFAULT_IMAGES,
    DEMO_SCOPE,
    DemoDataset,
    DemoFile,
    RigImage,
    demo_text,
)
from worksteps.emulators.rig.shared import (
    PlacedFile,
    RunningEmulator,
    SharedServices,
    start_shared_services,
)
from worksteps.emulators.rig.site import SiteRig, start_site, start_site_rig

__all__ = [
    "DEFAULT_DATASETS",
    "DEFAULT_FILES",
    "DEFAULT_IMAGES",
    "DEMO_SCOPE",
    "DemoDataset",
    "DemoFile",
    "PlacedFile",
    "RigImage",
    "RunningEmulator",
    "SharedServices",
    "SiteRig",
    "demo_text",
    "start_shared_services",
    "start_site",
    "start_site_rig",
]
