"""Registers the editor fixtures of editor_support (see there)."""

from editor_support import discovery, documents, editor, editor_database

__all__ = ["discovery", "documents", "editor", "editor_database"]
