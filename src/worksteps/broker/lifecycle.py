"""Phases and the one declarative table of allowed transitions, for sessions and components.

A transition is allowed when the table has a row whose from-set holds the current phase, whose
target is the wanted phase and whose actors include the one asking. :func:`transition` returns
a typed result instead of raising, so callers cannot mistake a refusal for success; the API
turns a :class:`Refused` into HTTP 409 (or 422 for an unknown phase).

Clients may only accept or reject an offer and cancel a session; everything else is the
broker's (expiry, preparation, failure, release).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Generic, TypeVar

from worksteps.schema.common import ComponentPhase, SessionPhase

__all__ = [
    "COMPONENT_TABLE",
    "SESSION_TABLE",
    "Actor",
    "Allowed",
    "ComponentPhase",
    "Refused",
    "Rule",
    "SessionPhase",
    "client_targets",
    "holds_capacity",
    "is_terminal",
    "transition",
]


P = TypeVar("P", SessionPhase, ComponentPhase)


class Actor(StrEnum):
    CLIENT = "client"
    BROKER = "broker"


@dataclass(frozen=True)
class Rule(Generic[P]):
    sources: frozenset[P]
    target: P
    actors: frozenset[Actor]
    advertised: bool = True  # listed in the session's ``phase`` option when a client may use it


@dataclass(frozen=True)
class Allowed(Generic[P]):
    source: P
    target: P


@dataclass(frozen=True)
class Refused(Generic[P]):
    source: P
    target: P
    reason: str
    allowed: tuple[P, ...]


S = SessionPhase
C = ComponentPhase
BOTH: Final = frozenset({Actor.CLIENT, Actor.BROKER})
BROKER: Final = frozenset({Actor.BROKER})

_S_ACTIVE = frozenset({S.ACCEPTED, S.WAITING, S.PREPARING, S.AVAILABLE, S.RUNNING})
_S_NON_TERMINAL = frozenset({S.INITIAL, S.OFFERED, *_S_ACTIVE, S.RELEASING})

SESSION_TABLE: Final[tuple[Rule[SessionPhase], ...]] = (
    Rule(frozenset({S.INITIAL}), S.OFFERED, BROKER),
    Rule(frozenset({S.OFFERED}), S.ACCEPTED, BOTH),
    Rule(frozenset({S.OFFERED}), S.REJECTED, BOTH),
    Rule(frozenset({S.OFFERED}), S.EXPIRED, BROKER),
    Rule(frozenset({S.ACCEPTED}), S.WAITING, BROKER),
    Rule(frozenset({S.ACCEPTED, S.WAITING}), S.PREPARING, BROKER),
    Rule(frozenset({S.PREPARING}), S.AVAILABLE, BROKER),
    Rule(frozenset({S.AVAILABLE}), S.RUNNING, BROKER),
    Rule(frozenset({S.AVAILABLE, S.RUNNING}), S.RELEASING, BROKER),
    Rule(frozenset({S.RELEASING}), S.COMPLETED, BROKER),
    Rule(frozenset({S.INITIAL, *_S_ACTIVE, S.RELEASING}), S.FAILED, BROKER),
    Rule(_S_NON_TERMINAL - {S.OFFERED}, S.CANCELLED, BOTH),
    # Cancelling an offer works (it is rejected with another name) but the spec advertises
    # only ACCEPTED / REJECTED while a session is offered.
    Rule(frozenset({S.OFFERED}), S.CANCELLED, BOTH, advertised=False),
)

_C_ACTIVE = frozenset({C.INITIALIZING, C.WAITING, C.PREPARING, C.AVAILABLE, C.RUNNING})

COMPONENT_TABLE: Final[tuple[Rule[ComponentPhase], ...]] = (
    Rule(frozenset({C.INITIALIZING}), C.WAITING, BROKER),
    Rule(frozenset({C.INITIALIZING, C.WAITING}), C.PREPARING, BROKER),
    Rule(frozenset({C.PREPARING}), C.AVAILABLE, BROKER),
    Rule(frozenset({C.AVAILABLE}), C.RUNNING, BROKER),
    Rule(frozenset({C.AVAILABLE, C.RUNNING}), C.RELEASING, BROKER),
    Rule(frozenset({C.RELEASING}), C.COMPLETED, BROKER),
    Rule(_C_ACTIVE | {C.RELEASING}, C.FAILED, BROKER),
    Rule(_C_ACTIVE | {C.RELEASING}, C.CANCELLED, BROKER),
)

_TERMINAL_SESSION: Final = frozenset({S.REJECTED, S.EXPIRED, S.COMPLETED, S.FAILED, S.CANCELLED})
_TERMINAL_COMPONENT: Final = frozenset({C.COMPLETED, C.FAILED, C.CANCELLED})
_HOLDING: Final = frozenset({S.OFFERED, *_S_ACTIVE, S.RELEASING})


def _table(phase: P) -> tuple[Rule[P], ...]:
    if isinstance(phase, SessionPhase):
        return SESSION_TABLE
    return COMPONENT_TABLE


def transition(current: P, target: P, actor: Actor = Actor.BROKER) -> Allowed[P] | Refused[P]:
    """Whether ``actor`` may move something in phase ``current`` to ``target``."""
    table = _table(current)
    allowed = tuple(r.target for r in table if current in r.sources and actor in r.actors)
    if target in allowed:
        return Allowed(current, target)
    if current == target:
        reason = f"it is already {current}"
    elif is_terminal(current):
        reason = f"{current} is final"
    elif any(current in r.sources and r.target == target for r in table):
        reason = f"only the broker moves {current} to {target}"
    else:
        reason = f"{current} cannot move to {target}"
    return Refused(current, target, reason, allowed)


def client_targets(current: SessionPhase) -> list[SessionPhase]:
    """The phases a client may ask for now: advertised as the session's ``phase`` option."""
    return [
        r.target
        for r in SESSION_TABLE
        if current in r.sources and Actor.CLIENT in r.actors and r.advertised
    ]


def is_terminal(phase: SessionPhase | ComponentPhase) -> bool:
    if isinstance(phase, SessionPhase):
        return phase in _TERMINAL_SESSION
    return phase in _TERMINAL_COMPONENT


def holds_capacity(phase: SessionPhase) -> bool:
    """Whether a session in ``phase`` keeps its booking (a hold or a confirmed booking)."""
    return phase in _HOLDING
