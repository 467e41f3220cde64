"""Emulator of CANFAR Skaha v1: the session service of an SRCNet site, on loopback.

The real ``canfar`` client works against it unchanged (``url=http://127.0.0.1:P/skaha/v1``,
any bearer token). Sessions are real where that is possible: a notebook is a JupyterLab
server with its own port and token, a headless session runs its command in its own working
directory; CARTA, desktop, contributed and Firefly sessions serve a page saying they are
emulated. Statuses, connectURLs and error messages follow the real service (see
``shared/reference/site-services.md`` §1 and §8).

Modules: ``config`` (SkahaConfig), ``create`` (checking a create request), ``model`` (a session
and its JSON), ``supervisor`` (the lifecycle of every session), ``runner`` (processes),
``routes`` (/skaha/v1), ``pages`` (session pages, VOSI), ``app`` (create_app).
"""

from worksteps.emulators.skaha.app import create_app
from worksteps.emulators.skaha.config import ImageEntry, SkahaConfig

__all__ = ["ImageEntry", "SkahaConfig", "create_app"]
