"""Emulated CANSRC PrepareData: stage DIDs into a user's area through the site's Rucio.

config  PrepareDataConfig: the site RSE, the home directory root, tokens, copy speed
tasks   TaskBook: a task's time-based course (Rucio rule, then copy home)
app     create_app(config, catalogue) -> ASGI app wrapped in FaultInjector
"""

from worksteps.emulators.preparedata.app import create_app
from worksteps.emulators.preparedata.config import PrepareDataConfig, StatusNames
from worksteps.emulators.preparedata.tasks import TaskBook, clean_destination

__all__ = ["PrepareDataConfig", "StatusNames", "TaskBook", "clean_destination", "create_app"]
