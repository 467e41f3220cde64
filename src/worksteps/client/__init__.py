"""The Python client of the Science Gateway's user API; the ``worksteps`` CLI is built on it.

credentials   where a signed-in user's token is kept (a 0600 file), per gateway
login         sign-in from a terminal: OAuth 2.0 authorization code + PKCE, loopback redirect
api           WorkstepsClient: worksteps, executions, offers, sessions, events
"""

from worksteps.client.api import ClientError, WorkstepsClient
from worksteps.client.credentials import Credentials, CredentialStore

__all__ = ["ClientError", "CredentialStore", "Credentials", "WorkstepsClient"]
