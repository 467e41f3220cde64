"""The full from x to product of both transition tables, against an independent statement."""

from __future__ import annotations

import itertools

import pytest

from worksteps.broker.lifecycle import (
    Actor,
    Allowed,
    ComponentPhase,
    Refused,
    SessionPhase,
    client_targets,
    holds_capacity,
    is_terminal,
    transition,
)

S = SessionPhase
C = ComponentPhase

# What the IVOA ExecutionBroker lifecycle means here, written out edge by edge.
CLIENT_EDGES = {
    (S.OFFERED, S.ACCEPTED),
    (S.OFFERED, S.REJECTED),
    *(
        (p, S.CANCELLED)
        for p in (
            S.INITIAL,
            S.OFFERED,
            S.ACCEPTED,
            S.WAITING,
            S.PREPARING,
            S.AVAILABLE,
            S.RUNNING,
            S.RELEASING,
        )
    ),
}
BROKER_ONLY_EDGES = {
    (S.INITIAL, S.OFFERED),
    (S.OFFERED, S.EXPIRED),
    (S.ACCEPTED, S.WAITING),
    (S.ACCEPTED, S.PREPARING),
    (S.WAITING, S.PREPARING),
    (S.PREPARING, S.AVAILABLE),
    (S.AVAILABLE, S.RUNNING),
    (S.AVAILABLE, S.RELEASING),
    (S.RUNNING, S.RELEASING),
    (S.RELEASING, S.COMPLETED),
    *(
        (p, S.FAILED)
        for p in (
            S.INITIAL,
            S.ACCEPTED,
            S.WAITING,
            S.PREPARING,
            S.AVAILABLE,
            S.RUNNING,
            S.RELEASING,
        )
    ),
}
COMPONENT_EDGES = {
    (C.INITIALIZING, C.WAITING),
    (C.INITIALIZING, C.PREPARING),
    (C.WAITING, C.PREPARING),
    (C.PREPARING, C.AVAILABLE),
    (C.AVAILABLE, C.RUNNING),
    (C.AVAILABLE, C.RELEASING),
    (C.RUNNING, C.RELEASING),
    (C.RELEASING, C.COMPLETED),
    *(
        (p, t)
        for p in (C.INITIALIZING, C.WAITING, C.PREPARING, C.AVAILABLE, C.RUNNING, C.RELEASING)
        for t in (C.FAILED, C.CANCELLED)
    ),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)))
def test_session_table(source: SessionPhase, target: SessionPhase) -> None:
    by_client = transition(source, target, Actor.CLIENT)
    by_broker = transition(source, target, Actor.BROKER)
    assert isinstance(by_client, Allowed) == ((source, target) in CLIENT_EDGES)
    assert isinstance(by_broker, Allowed) == ((source, target) in CLIENT_EDGES | BROKER_ONLY_EDGES)
    if isinstance(by_client, Refused):
        assert by_client.reason
        assert target not in by_client.allowed


@pytest.mark.parametrize(("source", "target"), list(itertools.product(C, C)))
def test_component_table(source: ComponentPhase, target: ComponentPhase) -> None:
    assert isinstance(transition(source, target, Actor.BROKER), Allowed) == (
        (source, target) in COMPONENT_EDGES
    )
    assert isinstance(transition(source, target, Actor.CLIENT), Refused)


def test_terminal_phases_have_no_way_out() -> None:
    for phase in S:
        outs = [t for t in S if isinstance(transition(phase, t, Actor.BROKER), Allowed)]
        assert is_terminal(phase) == (not outs)
    for cphase in C:
        outs_c = [t for t in C if isinstance(transition(cphase, t, Actor.BROKER), Allowed)]
        assert is_terminal(cphase) == (not outs_c)


def test_advertised_options_follow_the_spec() -> None:
    assert client_targets(S.OFFERED) == [S.ACCEPTED, S.REJECTED]
    for phase in (S.ACCEPTED, S.WAITING, S.PREPARING, S.AVAILABLE, S.RUNNING, S.RELEASING):
        assert client_targets(phase) == [S.CANCELLED]
    for phase in (S.REJECTED, S.EXPIRED, S.COMPLETED, S.FAILED, S.CANCELLED):
        assert client_targets(phase) == []


def test_refusals_explain_themselves() -> None:
    refused = transition(S.COMPLETED, S.ACCEPTED, Actor.CLIENT)
    assert isinstance(refused, Refused)
    assert "final" in refused.reason
    refused = transition(S.OFFERED, S.EXPIRED, Actor.CLIENT)
    assert isinstance(refused, Refused)
    assert "only the broker" in refused.reason


def test_capacity_is_held_exactly_while_a_session_may_still_run() -> None:
    holding = {p for p in S if holds_capacity(p)}
    assert holding == {
        S.OFFERED,
        S.ACCEPTED,
        S.WAITING,
        S.PREPARING,
        S.AVAILABLE,
        S.RUNNING,
        S.RELEASING,
    }
