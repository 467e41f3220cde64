"""Emulator of CANFAR Cavern: VOSpace 2.1 user storage backed by a real directory.

The real ``vos`` client works against it unchanged once its registry cache points the
resource ID at ``<url>/cavern/capabilities`` (see ``worksteps.site.cavern``). Beyond the real
service it offers, clearly marked and switchable, ``pullToVoSpace`` from loopback URLs (so
staged data can be "placed" in a user's area) and transfer progress in ``uws:jobInfo``.
"""

from .app import create_app
from .config import CavernConfig

__all__ = ["CavernConfig", "create_app"]
