"""Makes the fixtures of loopback_support visible to the tests in this folder."""

from loopback_support import blob_server, loopback, switchboard

__all__ = ["blob_server", "loopback", "switchboard"]
