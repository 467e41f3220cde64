"""Who may call the broker, and whose offer sets and sessions they may see: one dependency.

With ``BrokerSettings.auth`` set, every route it guards needs a valid bearer token (401
otherwise). A route with a ``{uuid}`` in its path names an offer set, a session or one of a
session's components; unless the caller owns it (or is an admin) it answers 404, exactly as for
an unknown uuid, so nothing tells one user what another has. New offer sets and sessions belong
to the caller (:func:`owner_of`). Without ``auth`` the broker is open and owns nothing.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import select

from worksteps.broker.api.state import BrokerState
from worksteps.broker.db.tables import ComponentRow, OfferSetRow, SessionRow
from worksteps.broker.settings import BrokerSettings
from worksteps.core.auth import Authenticator, Principal, TokenVerifier
from worksteps.core.errors import NotFound

__all__ = ["BrokerAccess", "owner_of"]

_FAMILIES = ("executables", "compute", "storage", "data", "volumes")


def owner_of(request: Request) -> str | None:
    """The owner to record for what this request creates (None on an open broker)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.subject if principal is not None else None


class BrokerAccess:
    """The router-level dependency; built once per app from its settings."""

    def __init__(self, settings: BrokerSettings) -> None:
        auth = settings.auth
        self.authenticate = Authenticator(TokenVerifier(auth)) if auth is not None else None

    async def __call__(self, request: Request) -> None:
        if self.authenticate is None:
            return
        principal = await self.authenticate(request)
        uuid = request.path_params.get("uuid")
        if uuid is None or principal.admin:
            return
        state: BrokerState = request.app.state.broker
        owner = await self._owner(state, request.url.path, str(uuid))
        if owner is not None and owner != principal.subject:
            raise _not_found(request.url.path, str(uuid))

    @staticmethod
    async def _owner(state: BrokerState, path: str, uuid: str) -> str | None:
        family = path.strip("/").split("/", 1)[0]
        async with state.db.read() as conn:
            if family == "offersets":
                query = select(OfferSetRow.owner).where(OfferSetRow.uuid == uuid)
            elif family == "sessions":
                query = select(SessionRow.owner).where(SessionRow.uuid == uuid)
            elif family in _FAMILIES:
                query = (
                    select(SessionRow.owner)
                    .join(ComponentRow, ComponentRow.session == SessionRow.uuid)
                    .where(ComponentRow.uuid == uuid)
                )
            else:
                return None
            owner = (await conn.execute(query)).scalar_one_or_none()
        return str(owner) if owner is not None else None


def _not_found(path: str, uuid: str) -> NotFound:
    """The very answer the routes give for an unknown uuid."""
    family = path.strip("/").split("/", 1)[0]
    if family == "offersets":
        return NotFound(f"There is no offer set {uuid}.", reason="offerset-not-found")
    if family == "sessions":
        return NotFound(f"There is no session {uuid}.", reason="session-not-found")
    return NotFound(f"There is no {family} component {uuid}.", reason="component-not-found")
