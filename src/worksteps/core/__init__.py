"""Cross-cutting foundations: settings, database, errors (RFC 9457), HTTP, logging.

Nothing here knows about worksteps, offers or sessions; every other package may import
from ``core`` and ``core`` imports from none of them.
"""
