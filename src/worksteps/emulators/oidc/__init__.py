"""A local OIDC issuer for development and tests: the stand-in for SRCNet's SKA-IAM.

It signs RS256 JWTs with a key it generates (or loads), publishes the discovery document and
the JWKS like any issuer, so services verify its tokens exactly as they verify SKA-IAM's. With
a :class:`SignInConfig` it also signs configured development users in through the
authorization-code flow with PKCE (a page to pick a user, no passwords), and refuses to start
when the configuration says production.
"""

from worksteps.emulators.oidc.app import RefusedInProduction, create_app
from worksteps.emulators.oidc.issuer import LocalIssuer
from worksteps.emulators.oidc.signin import DevUser, OidcClient, SignInConfig

__all__ = [
    "DevUser",
    "LocalIssuer",
    "OidcClient",
    "RefusedInProduction",
    "SignInConfig",
    "create_app",
]
