"""What the gateway's routes share, kept on ``app.state.gateway``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from worksteps.gateway.settings import GatewaySettings
from worksteps.gateway.web.relying_party import RelyingParty
from worksteps.gateway.web.render import Pages
from worksteps.gateway.web.session import Sessions

__all__ = ["GatewayState", "gateway_state"]


@dataclass(frozen=True)
class GatewayState:
    settings: GatewaySettings
    sessions: Sessions
    pages: Pages
    relying_party: RelyingParty | None  # None: sign-in is off (dev_mode, auth=None)


def gateway_state(request: Request) -> GatewayState:
    state = request.app.state.gateway
    assert isinstance(state, GatewayState)
    return state
