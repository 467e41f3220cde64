"""A local OIDC issuer for development and tests: the stand-in for SRCNet's SKA-IAM.

It signs RS256 JWTs with a key it generates (or loads), publishes the discovery document and
the JWKS like any issuer, so services verify its tokens exactly as they verify SKA-IAM's.
"""

from worksteps.emulators.oidc.app import create_app
from worksteps.emulators.oidc.issuer import LocalIssuer

__all__ = ["LocalIssuer", "create_app"]
