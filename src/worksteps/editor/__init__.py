"""The Workstep Editor: create a workstep six ways, edit it, keep every version.

Layers, top to bottom: ``api`` (HTTP; ``editor_router`` for the gateway, ``create_app`` for
``worksteps serve editor``) → ``service`` (ownership, validation, versions) → ``creation``
(the six modes), ``edits``, ``templates``, ``fetch`` (all outgoing fetches and their policy) →
``store`` / ``db`` (SQLAlchemy tables, Alembic migrations in ``migrations``) → ``model``.

Invariants: a workstep converts to an IVOA ExecutionRequest and back without loss; a stored
version never changes; a refused creation or edit stores nothing; a caller only ever sees their
own worksteps (an admin sees all).
"""

from worksteps.editor.api import create_app, editor_router
from worksteps.editor.model import Origin, OriginMode, Workstep, WorkstepContent
from worksteps.editor.service import EditorService
from worksteps.editor.settings import EditorSettings, FetchSettings, Limits

__all__ = [
    "EditorService",
    "EditorSettings",
    "FetchSettings",
    "Limits",
    "Origin",
    "OriginMode",
    "Workstep",
    "WorkstepContent",
    "create_app",
    "editor_router",
]
