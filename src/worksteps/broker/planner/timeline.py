"""A site's usage over time kept for change: cheap to add to and take from, excerpted to plan.

A :class:`~worksteps.broker.planner.calendar.Calendar` keeps the usage level after each
boundary in flat lists, so adding one booking to a calendar of 100k bookings moves 200k list
entries five times (about a millisecond). The ledger changes its calendar with every offer
made, released or lapsed, so it keeps a :class:`Timeline` instead:

- each boundary stores the *change* of usage there (one delta per resource), not the level, so
  a booking touches two boundaries whatever it spans;
- the boundaries live in blocks of at most ``2 * _BLOCK``, each with the sums of its deltas, so
  inserting or dropping a boundary moves at most one block's entries, and the level before a
  block is the sum of the blocks' sums before it.

:meth:`Timeline.window` turns the part of the timeline that matters for one request into a
plain :class:`Calendar` (levels accumulated in C), where the planner does its searching.
Invariants: times strictly increase across blocks, no block is empty, no boundary has a zero
change in every resource, and the level (sum of all deltas up to a boundary) is never negative
as long as only bookings that were added are removed (:meth:`window` checks what it returns).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime
from itertools import accumulate

from worksteps.broker.planner.calendar import Calendar, step_function
from worksteps.broker.planner.model import Booking, Resources

__all__ = ["Timeline"]

_BLOCK = 256  # boundaries per block when built; a block splits when it reaches twice this


class _Block:
    __slots__ = ("deltas", "sums", "times")

    def __init__(self, times: list[datetime], deltas: list[list[int]]) -> None:
        self.times = times
        self.deltas = deltas  # one list per resource, parallel to times
        self.sums = [sum(d) for d in deltas]


def _levels(deltas: list[int], base: int) -> list[int]:
    """The levels after each change, from ``base`` before the first."""
    if not base and not any(deltas):  # a resource nobody books here (often GPUs)
        return [0] * len(deltas)
    levels = list(accumulate(deltas, initial=base))
    del levels[0]
    return levels


class Timeline:
    """Changes of usage at the boundaries of a site's bookings, in blocks."""

    __slots__ = ("_blocks", "_capacity", "_firsts")

    def __init__(self, capacity: Resources) -> None:
        capacity.require_nonnegative("capacity")
        self._capacity = capacity
        self._blocks: list[_Block] = []
        self._firsts: list[datetime] = []  # the first time of each block

    @classmethod
    def from_columns(
        cls,
        capacity: Resources,
        starts: list[datetime],
        ends: list[datetime],
        amounts: list[list[int]],
    ) -> Timeline:
        """A timeline of the bookings given as columns (as :meth:`Calendar.from_columns`)."""
        timeline = cls(capacity)
        times, levels = step_function(starts, ends, amounts)
        deltas = [[b - a for a, b in zip([0, *level], level, strict=False)] for level in levels]
        for first in range(0, len(times), _BLOCK):
            part = slice(first, first + _BLOCK)
            timeline._blocks.append(_Block(times[part], [d[part] for d in deltas]))
            timeline._firsts.append(times[first])
        return timeline

    @property
    def boundary_count(self) -> int:
        return sum(len(block.times) for block in self._blocks)

    def add(self, booking: Booking) -> None:
        amounts = booking.resources.as_tuple()
        self._change(booking.start, amounts, 1)
        self._change(booking.end, amounts, -1)

    def remove(self, booking: Booking) -> None:
        """Take away a booking added before (removing another corrupts the timeline)."""
        amounts = booking.resources.as_tuple()
        self._change(booking.start, amounts, -1)
        self._change(booking.end, amounts, 1)

    def _change(self, t: datetime, amounts: tuple[int, int, int, int], sign: int) -> None:
        if not any(amounts):
            return
        if not self._blocks:
            self._blocks.append(_Block([t], [[sign * a] for a in amounts]))
            self._firsts.append(t)
            return
        j = max(bisect_right(self._firsts, t) - 1, 0)
        block = self._blocks[j]
        i = bisect_left(block.times, t)
        for r, amount in enumerate(amounts):
            block.sums[r] += sign * amount
        if i < len(block.times) and block.times[i] == t:
            for d, amount in zip(block.deltas, amounts, strict=True):
                d[i] += sign * amount
            if not any(d[i] for d in block.deltas):
                self._drop(j, i)
            return
        block.times.insert(i, t)
        for d, amount in zip(block.deltas, amounts, strict=True):
            d.insert(i, sign * amount)
        if i == 0:
            self._firsts[j] = t
        if len(block.times) >= 2 * _BLOCK:
            self._split(j)

    def _drop(self, j: int, i: int) -> None:
        block = self._blocks[j]
        del block.times[i]
        for d in block.deltas:
            del d[i]
        if not block.times:
            del self._blocks[j]
            del self._firsts[j]
        elif i == 0:
            self._firsts[j] = block.times[0]

    def _split(self, j: int) -> None:
        block = self._blocks[j]
        half = len(block.times) // 2
        upper = _Block(block.times[half:], [d[half:] for d in block.deltas])
        lower = _Block(block.times[:half], [d[:half] for d in block.deltas])
        self._blocks[j : j + 1] = [lower, upper]
        self._firsts.insert(j + 1, upper.times[0])

    def window(self, start: datetime, end: datetime) -> Calendar:
        """A calendar that agrees with this timeline on ``[start, end)`` (as
        :meth:`Calendar.excerpt` of the whole calendar would), in O(blocks + k) for the k
        boundaries inside. Raises ``ValueError`` if some usage there is below zero (something
        was removed that was never added)."""
        if not start < end:
            raise ValueError("a window needs start < end")
        blocks = self._blocks
        j = bisect_right(self._firsts, start) - 1
        if j < 0:  # the window starts before every boundary
            j, i, base = 0, 0, [0, 0, 0, 0]
        else:
            i = bisect_right(blocks[j].times, start) - 1  # the segment holding start
            sums = [block.sums for block in blocks[:j]]
            base = [
                sum(column) + sum(blocks[j].deltas[r][:i])
                for r, column in enumerate(zip(*sums, strict=True) if sums else ((), (), (), ()))
            ]
        times: list[datetime] = []
        deltas: list[list[int]] = [[], [], [], []]
        while j < len(blocks):
            block = blocks[j]
            stop = bisect_left(block.times, end)
            times += block.times[i:stop]
            for r in range(4):
                deltas[r] += block.deltas[r][i:stop]
            if stop < len(block.times):
                break
            j, i = j + 1, 0
        levels = [_levels(d, b) for d, b in zip(deltas, base, strict=True)]
        if any(level and min(level) < 0 for level in levels):
            raise ValueError("usage below zero: the timeline lost track of its bookings")
        if times and any(level[-1] for level in levels):
            times.append(end)  # close the last segment: usage after ``end`` is unknown
            for level in levels:
                level.append(0)
        cores, memory, gpus, storage = levels
        return Calendar.from_step(self._capacity, times, (cores, memory, gpus, storage))
