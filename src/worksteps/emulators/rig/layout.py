"""A site rig's names and its folders: the checks on the user and storage-element names, and
the layout under the rig's root that lets Skaha's sessions see Cavern's homes
(:mod:`.site` has the picture)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["check_rse", "check_user", "prepare_layout", "slug"]

_USER = re.compile(r"[a-z0-9][a-z0-9_-]{0,24}")
_RSE = re.compile(r"[A-Z0-9]+([_-][A-Z0-9]+)*")


def slug(name: str) -> str:
    """The site's name in lower case, runs of other characters as one '-'."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not text:
        raise ValueError(f"site name {name!r} needs at least one letter or digit")
    return text


def prepare_layout(root: Path, user: str) -> None:
    storage_home = root / "storage" / "home"
    (storage_home / user).mkdir(parents=True, exist_ok=True)
    (root / "skaha").mkdir(parents=True, exist_ok=True)
    link = root / "skaha" / "home"
    if link.is_symlink() and link.resolve() == storage_home.resolve():
        return
    if link.exists() or link.is_symlink():
        raise ValueError(f"{link} exists and is not the link to {storage_home}")
    link.symlink_to(Path("..") / "storage" / "home", target_is_directory=True)


def check_user(user: str) -> None:
    if not _USER.fullmatch(user):
        raise ValueError(f"user {user!r}: 1-25 of a-z, 0-9, '_', '-' (a Rucio account name)")


def check_rse(rse: str) -> None:
    if not _RSE.fullmatch(rse):
        raise ValueError(f"RSE name {rse!r}: upper-case letters and digits, '-' or '_'")
