"""The threads in which the blocking site clients (rucio-clients, vos, oras) run.

They have a pool of their own, not the event loop's default executor (``cpu_count() + 4``
threads): a call that hangs until its timeout holds one thread, and a site service that hangs
for everyone must not queue every other call, nor the rest of the process, behind it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["THREADS", "run_blocking"]

T = TypeVar("T")
THREADS = 64
"""Blocking site calls in flight at once, per process."""

_pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="site-call")


async def run_blocking(call: Callable[..., T], *args: object) -> T:
    """``call(*args)`` in a site-call thread (the caller's context goes along)."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, functools.partial(context.run, call, *args))
