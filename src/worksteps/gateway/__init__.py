"""The Science Gateway: how people reach Worksteps, in a browser and through its JSON API.

Invariants:

- Nothing is shown or changed without a signed-in user: pages send the browser to sign in,
  the API answers 401 (problem JSON). Sign-in is the OIDC authorization-code flow with PKCE
  against the configured issuer; the gateway keeps no passwords and no server-side sessions.
- Every state-changing browser request carries the session's CSRF token.
- Pages are server-rendered (Jinja2) with a little hand-written JavaScript; nothing is loaded
  from another origin.
- The gateway calls downwards only (editor, execution); the identity of the user travels on as
  their own bearer token (:attr:`~worksteps.core.auth.Principal.authorization`).
"""

from worksteps.gateway.access import GatewayAuthenticator
from worksteps.gateway.app import create_app
from worksteps.gateway.settings import GatewaySettings
from worksteps.gateway.web.render import NavLink

__all__ = ["GatewayAuthenticator", "GatewaySettings", "NavLink", "create_app"]
