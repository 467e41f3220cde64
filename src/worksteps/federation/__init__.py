"""The embedded federation: every Worksteps service and three emulated SRCNet sites in one
process on loopback, started by ``worksteps up``.

    config   what it is made of (sites, data lake, images, users); YAML-overridable
    launch   start everything in dependency order, stop it all (sessions included)
"""

from worksteps.federation.config import FederationConfig, SiteSpec
from worksteps.federation.launch import Federation, RunningSite, start_federation

__all__ = ["Federation", "FederationConfig", "RunningSite", "SiteSpec", "start_federation"]
