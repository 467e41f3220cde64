"""The editor's ``file://`` URLs: only under the allowed roots; ``..``, symlinks out, encoded
tricks, other hosts and special files are refused with a clear 422 and nothing is read.

"Nothing read" is observed, not assumed: every target outside the root is a named pipe (FIFO).
Opening one for reading blocks until a writer comes, so an editor that opened it would not
answer at all; and afterwards a non-blocking open for writing succeeds only if a reader is
still waiting on it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from worksteps.core.serving import ServedApp, start_in_thread
from worksteps.editor.api import create_app
from worksteps.editor.settings import EditorSettings, FetchSettings
from worksteps.editor.templates import FILES

MARKER = "do-not-leak-7f3a"
MODES = ("from-discovery", "from-history", "from-provenance")


@dataclass(frozen=True)
class Tree:
    root: Path  # the one allowed root
    outside: Path  # beside it, not allowed
    pipes: tuple[Path, ...]


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tree]:
    base = tmp_path_factory.mktemp("files")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "notebook.ipynb").write_bytes((FILES / "welcome.ipynb").read_bytes())
    (outside / "secret.ipynb").write_text('{"cells": [], "nbformat": 4, "x": "' + MARKER + '"}')
    evil = base / "root-evil"  # shares the root's name as a prefix
    evil.mkdir()
    pipes = (
        _fifo(outside / "pipe.json"),
        _fifo(root / "inner-pipe.json"),
        _fifo(evil / "pipe.json"),
    )
    (root / "link.json").symlink_to(outside / "pipe.json")
    (root / "secret-link.ipynb").symlink_to(outside / "secret.ipynb")
    (root / "outdir").symlink_to(outside, target_is_directory=True)
    yield Tree(root, outside, pipes)
    for pipe in pipes:
        _release(pipe)


def _release(pipe: Path) -> bool:
    """True when a reader was blocked on ``pipe`` (it is let go with end-of-file)."""
    try:
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: no reader has it open
            raise
        return False
    os.close(fd)
    return True


@pytest.fixture(scope="module")
def editor(tree: Tree, oidc: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("editor")
    settings = EditorSettings(
        database_url=f"sqlite:///{data}/editor.sqlite",
        auth=oidc.settings,
        fetch=FetchSettings(allowed_file_roots=[tree.root], timeout=5),
    )
    served: ServedApp = start_in_thread(create_app(settings))
    yield served.url
    served.stop()


def _create(editor: str, oidc: Any, mode: str, url: str) -> httpx.Response:
    return httpx.post(
        f"{editor}/worksteps/{mode}", json={"url": url}, headers=oidc.headers("alice"), timeout=8
    )


def test_a_file_under_the_allowed_root_is_read(editor: str, oidc: Any, tree: Tree) -> None:
    made = _create(editor, oidc, "from-discovery", (tree.root / "notebook.ipynb").as_uri())
    assert made.status_code == 201, made.text
    assert made.json()["executable"]["location"].endswith("notebook.ipynb")


def _refused_urls(tree: Tree) -> dict[str, str]:
    root, outside = tree.root.as_posix(), tree.outside.as_posix()
    return {
        "outside the root": f"file://{outside}/pipe.json",
        "system file": "file:///etc/passwd",
        "dot-dot": f"file://{root}/../outside/pipe.json",
        "dot-dot at the end": f"file://{root}/..",
        "encoded dot-dot": f"file://{root}/%2e%2e/outside/pipe.json",
        "encoded slashes": f"file://{root}%2F..%2Foutside%2Fpipe.json",
        "double-encoded dot-dot": f"file://{root}/%252e%252e/outside/pipe.json",
        "symlink out": f"file://{root}/link.json",
        "symlink out to a readable file": f"file://{root}/secret-link.ipynb",
        "symlinked directory out": f"file://{root}/outdir/pipe.json",
        "a sibling named like the root": f"file://{root}-evil/pipe.json",
        "a special file inside the root": f"file://{root}/inner-pipe.json",
        "the root itself": f"file://{root}",
        "another host": f"file://example.org{root}/notebook.ipynb",
        "no authority": "file:/etc/passwd",
        "relative": "file:../outside/pipe.json",
        "encoded NUL": f"file://{root}/notebook.ipynb%00.json",
        "NUL before a traversal": f"file://{root}/%00/../../outside/pipe.json",
    }


@pytest.mark.parametrize("mode", MODES)
def test_files_outside_the_roots_are_refused_and_never_opened(
    editor: str, oidc: Any, tree: Tree, mode: str
) -> None:
    for case, url in _refused_urls(tree).items():
        answer = _create(editor, oidc, mode, url)  # a read of a pipe would never answer
        assert answer.status_code == 422, f"{case}: {answer.status_code} {answer.text[:300]}"
        body = answer.json()
        assert answer.headers["content-type"].startswith("application/problem+json"), case
        assert body["errors"] and body["errors"][0]["field"] == "url", (case, body)
        assert body["errors"][0]["reason"], case
        assert MARKER not in answer.text, case
    for pipe in tree.pipes:
        assert not _release(pipe), f"the editor opened {pipe}"
    listed = httpx.get(f"{editor}/worksteps", headers=oidc.headers("alice"), timeout=8).json()
    assert all(MARKER not in str(w) for w in listed["worksteps"])
