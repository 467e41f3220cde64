"""The Workstep Editor's operations, on behalf of a signed-in caller.

Rules kept here, for every way in (API, gateway, tests):

- ownership: a caller sees and changes only their own worksteps; anyone else's is
  :class:`~worksteps.core.errors.NotFound`, exactly like one that does not exist. An admin
  (``principal.admin``) sees and changes all;
- every creation and edit is checked as a whole (:func:`~worksteps.editor.validation.check_content`)
  and refused with every field error at once; a refused change stores nothing;
- every accepted change is a new version based on the one the caller names; a stale base is
  :class:`~worksteps.core.errors.Conflict` (409).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from worksteps.core.auth import Principal
from worksteps.core.errors import FieldError, InvalidInput, NotFound
from worksteps.editor.creation.data import attach, data_resources, taken_names
from worksteps.editor.creation.discovery import from_discovery
from worksteps.editor.creation.history import from_history
from worksteps.editor.creation.provenance import from_provenance
from worksteps.editor.edits import Edit, name_resources
from worksteps.editor.fetch import Fetcher
from worksteps.editor.model import Origin, OriginMode, Workstep, WorkstepContent, content_of_request
from worksteps.editor.settings import EditorSettings
from worksteps.editor.store import VersionInfo, WorkstepStore, stale_version
from worksteps.editor.templates import Catalogue
from worksteps.editor.validation import check_content, field_errors, refuse_if_any
from worksteps.schema.documents import ExecutionRequest
from worksteps.schema.legacy import normalize_request

__all__ = ["EditorService"]


def _now() -> datetime:
    return datetime.now(UTC)


def _missing(uuid: UUID) -> NotFound:
    return NotFound(f"There is no workstep {uuid} of yours.", reason="workstep-not-found")


class EditorService:
    """Creates, reads, edits and deletes worksteps; see the module docstring for the rules."""

    def __init__(
        self,
        settings: EditorSettings,
        store: WorkstepStore,
        fetcher: Fetcher,
        catalogue: Catalogue,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        self.catalogue = catalogue
        self.clock = clock

    async def start(self) -> None:
        """Bring the database to the current schema (call once at start-up)."""
        await self.store.migrate()

    async def aclose(self) -> None:
        """Close outgoing connections (the database belongs to whoever opened it)."""
        await self.fetcher.aclose()

    # --- reading ---------------------------------------------------------------------------

    async def get(self, principal: Principal, uuid: UUID, version: int | None = None) -> Workstep:
        """The caller's workstep (at ``version``, else the latest), or NotFound."""
        owner = await self.store.owner(uuid)
        if owner is None or not principal.may_see(owner):
            raise _missing(uuid)
        workstep = await self.store.get(uuid, version)
        if workstep is None:
            raise NotFound(f"Workstep {uuid} has no version {version}.", reason="version-not-found")
        return workstep

    async def list_worksteps(
        self, principal: Principal, *, owner: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Workstep]:
        """The caller's worksteps, newest first; an admin sees everyone's (or ``owner``'s)."""
        if not principal.admin:
            owner = principal.subject
        return await self.store.latest(owner, limit=limit, offset=offset)

    async def versions(self, principal: Principal, uuid: UUID) -> list[VersionInfo]:
        await self.get(principal, uuid)
        return await self.store.versions(uuid)

    # --- creating --------------------------------------------------------------------------

    def _checked(self, content: WorkstepContent, prefix: str | None) -> None:
        name_resources(content)
        errors = check_content(content, self.settings.limits)
        if prefix is not None:  # the content came from a document the caller only named
            errors = [FieldError(prefix, f"{e['field']}: {e['reason']}") for e in errors]
        refuse_if_any(errors, "The new workstep")

    async def _create(
        self,
        principal: Principal,
        content: WorkstepContent,
        origin: Origin,
        *,
        name: str | None,
        source_field: str | None = None,
    ) -> Workstep:
        if name is not None:
            content.name = name
        self._checked(content, source_field)
        now = self.clock()
        workstep = Workstep(
            **dict(content),
            uuid=uuid4(),
            owner=principal.subject,
            origin=origin,
            version=1,
            created=now,
            modified=now,
        )
        await self.store.insert(workstep, author=principal.subject, change=f"create:{origin.mode}")
        return workstep

    async def create_empty(
        self,
        principal: Principal,
        *,
        name: str | None = None,
        request: dict[str, Any] | None = None,
    ) -> Workstep:
        """An empty workstep, or one holding an IVOA ExecutionRequest sent as it is."""
        if request is None:
            return await self._create(
                principal, WorkstepContent(), Origin(mode=OriginMode.EMPTY), name=name
            )
        try:
            parsed = ExecutionRequest.model_validate(normalize_request(request))
        except ValidationError as exc:
            raise InvalidInput("The request is not valid.", field_errors(exc, "request")) from None
        content = content_of_request(parsed)
        name_resources(content)
        errors = check_content(content, self.settings.limits)
        refuse_if_any([FieldError(f"request.{e['field']}", e["reason"]) for e in errors])
        return await self._create(principal, content, Origin(mode=OriginMode.REQUEST), name=name)

    async def create_from_data(
        self, principal: Principal, references: Sequence[str], *, name: str | None = None
    ) -> Workstep:
        if not references:
            raise InvalidInput(
                "Name at least one data reference.", [FieldError("references", "is empty")]
            )
        content = WorkstepContent()
        resources = await data_resources(
            references,
            fetcher=self.fetcher,
            principal=principal,
            taken=set(),
            datalink_service=self.settings.datalink_service,
        )
        attach(content, resources)
        content.name = (
            name or f"Data: {', '.join(r.meta.name or '' for r in resources if r.meta)}"[:256]
        )
        origin = Origin(mode=OriginMode.DATA, detail={"references": list(references)})
        return await self._create(principal, content, origin, name=None)

    async def create_from_template(
        self, principal: Principal, template: str, *, editor_url: str, name: str | None = None
    ) -> Workstep:
        chosen = self.catalogue.get(template)
        content = chosen.content(registry=self.settings.image_registry, editor_url=editor_url)
        origin = Origin(mode=OriginMode.TEMPLATE, source=chosen.name)
        return await self._create(principal, content, origin, name=name)

    async def create_from_discovery(
        self, principal: Principal, url: str, *, name: str | None = None
    ) -> Workstep:
        content, origin = await from_discovery(url, fetcher=self.fetcher, principal=principal)
        return await self._create(principal, content, origin, name=name, source_field="url")

    async def create_from_history(
        self, principal: Principal, url: str, *, editor_url: str, name: str | None = None
    ) -> Workstep:
        async def lookup(uuid: UUID, version: int | None) -> Workstep:
            return await self.get(principal, uuid, version)

        content, origin = await from_history(
            url, fetcher=self.fetcher, principal=principal, editor_url=editor_url, lookup=lookup
        )
        return await self._create(principal, content, origin, name=name, source_field="url")

    async def create_from_provenance(
        self, principal: Principal, url: str, *, name: str | None = None
    ) -> Workstep:
        content, origin = await from_provenance(
            url,
            fetcher=self.fetcher,
            principal=principal,
            datalink_service=self.settings.datalink_service,
        )
        return await self._create(principal, content, origin, name=name, source_field="url")

    # --- changing --------------------------------------------------------------------------

    def add_data(self, principal: Principal, references: Sequence[str]) -> Edit:
        """An edit adding data references (as "from data" does) to a workstep."""

        async def apply(content: WorkstepContent) -> None:
            resources = await data_resources(
                references,
                fetcher=self.fetcher,
                principal=principal,
                taken=taken_names(content),
                datalink_service=self.settings.datalink_service,
            )
            attach(content, resources)

        return apply

    async def edit(
        self, principal: Principal, uuid: UUID, based_on: int | None, change: str, edit: Edit
    ) -> Workstep:
        """Apply ``edit`` to version ``based_on`` (the latest when None) as the next version."""
        current = await self.get(principal, uuid)
        if based_on is None:
            based_on = current.version
        elif current.version != based_on:  # answer early; the store checks again atomically
            raise stale_version(uuid, based_on, current.version)
        content = current.content
        await edit(content)
        name_resources(content)
        refuse_if_any(check_content(content, self.settings.limits), "The changed workstep")
        updated = Workstep(
            **dict(content),
            uuid=current.uuid,
            owner=current.owner,
            origin=current.origin,
            version=based_on + 1,
            created=current.created,
            modified=self.clock(),
        )
        await self.store.append(updated, based_on=based_on, author=principal.subject, change=change)
        return updated

    async def delete(self, principal: Principal, uuid: UUID, based_on: int | None = None) -> None:
        await self.get(principal, uuid)
        if not await self.store.delete(uuid, based_on=based_on):
            raise _missing(uuid)
