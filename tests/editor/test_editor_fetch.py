"""Unreachable, malformed and hostile URLs in the URL-based creation modes: a clear 422 naming
the field, and nothing created."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from editor_support import Documents, Editor, user

from worksteps.core.auth import Principal
from worksteps.core.errors import InvalidInput
from worksteps.core.serving import free_port
from worksteps.editor.fetch import Fetcher
from worksteps.editor.settings import FetchSettings

MODES = ["from-discovery", "from-history", "from-provenance"]


def _refused(editor: Editor, mode: str, url: str) -> str:
    with editor.client(user()) as client:
        answer = client.post(f"/worksteps/{mode}", json={"url": url})
        assert answer.status_code == 422, answer.text
        assert answer.json()["reason"] == "unusable-url"
        (error,) = answer.json()["errors"]
        assert error["field"] == "url"
        assert client.get("/worksteps").json() == {"worksteps": []}
        reason: str = error["reason"]
        return reason


@pytest.mark.parametrize("mode", MODES)
def test_schemes_and_hosts(editor: Editor, mode: str) -> None:
    assert _refused(editor, mode, "ftp://example.org/x.json") == "scheme 'ftp' is not supported"
    unreachable = f"http://127.0.0.1:{free_port()}/x.json"
    assert _refused(editor, mode, unreachable) == "it cannot be reached (ConnectError)"


@pytest.mark.parametrize("mode", MODES)
def test_redirects(editor: Editor, documents: Documents, mode: str) -> None:
    to_file = documents.put("/r/file", b"", status=302, headers={"Location": "file:///etc/passwd"})
    assert _refused(editor, mode, to_file) == "it redirects to another scheme"
    for i in range(5):
        documents.put(f"/r/loop{i}", b"", status=307, headers={"Location": f"/r/loop{i + 1}"})
    assert _refused(editor, mode, f"{documents.url}/r/loop0") == "more than 3 redirects"


def test_the_token_does_not_follow_a_redirect_elsewhere(
    editor: Editor, documents: Documents
) -> None:
    target = documents.put("/moved/e-1", json.dumps({"request": {"meta": {"name": "moved"}}}))
    away = target.replace(documents.url, documents.untrusted)
    start = documents.put("/start/e-1", b"", status=302, headers={"Location": away})
    with editor.client(user()) as client:
        answer = client.post("/worksteps/from-history", json={"url": start})
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"] == "moved"
    assert documents.seen["/start/e-1"][-1]["authorization"].startswith("Bearer ")
    assert "authorization" not in documents.seen["/moved/e-1"][-1]


def test_a_slow_document(editor: Editor, documents: Documents) -> None:
    slow = documents.put("/slow", b"{}", hang=True)
    began = time.monotonic()
    assert _refused(editor, "from-provenance", slow) == "no answer within 1 s"
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("mode", MODES)
def test_huge_documents(editor: Editor, documents: Documents, mode: str) -> None:
    big = b"[" + b"0," * 40_000 + b"0]"
    declared = documents.put("/big", big)
    assert _refused(editor, mode, declared) == f"the document is larger than {64 * 1024} bytes"
    streamed = documents.put("/big-stream", big, chunks=20)
    assert _refused(editor, mode, streamed) == f"the document is larger than {64 * 1024} bytes"


@pytest.mark.parametrize("mode", MODES)
def test_documents_of_the_wrong_format(editor: Editor, documents: Documents, mode: str) -> None:
    html = documents.put("/page.html", "<html><body>hello</body></html>", content_type="text/html")
    assert _refused(editor, mode, html)
    garbage = documents.put("/garbage", b"\xff\xfe\x00not text", content_type="application/json")
    assert "cannot be read" in _refused(editor, mode, garbage)
    deep = documents.put("/deep", "[" * 30000 + "]" * 30000)
    assert "nested deeper" in _refused(editor, mode, deep)
    deep_object = documents.put("/deep-object", '{"a":' * 10000 + "1" + "}" * 10000)
    assert "nested deeper" in _refused(editor, mode, deep_object)


@pytest.mark.parametrize("mode", MODES)
def test_files(editor: Editor, tmp_path: Path, mode: str) -> None:
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    link = editor.files / f"link-{mode}.json"
    link.symlink_to(outside)
    assert (
        _refused(editor, mode, link.as_uri()) == "file:// URLs must lie under an allowed directory"
    )
    sneaky = f"file://{editor.files}/../{outside.parent.name}/secret.json"
    assert _refused(editor, mode, sneaky) == "a file:// path must be absolute, without '..'"
    assert _refused(editor, mode, (editor.files / "none.json").as_uri()) == "no such file"
    assert _refused(editor, mode, editor.files.as_uri()) == "it is not a file"
    assert _refused(editor, mode, "file://other-host/etc/passwd") == (
        "a file:// URL must name a local path"
    )


async def test_an_allow_list_of_hosts(documents: Documents) -> None:
    fetcher = Fetcher(FetchSettings(allowed_hosts=["localhost"]))
    try:
        url = documents.put("/allowed.json", "{}")
        with pytest.raises(InvalidInput) as info:
            await fetcher.fetch(url, "source", Principal("u", "u", token="t"))
        assert info.value.errors == [
            {"field": "source", "reason": "host '127.0.0.1' is not one the editor may fetch from"}
        ]
        local = url.replace("127.0.0.1", "localhost")
        fetched = await fetcher.fetch(local, "source", Principal("u", "u", token="t"))
        assert fetched.body == b"{}"
        assert "authorization" not in documents.seen["/allowed.json"][-1]  # not trusted
    finally:
        await fetcher.aclose()


def test_a_trusted_origin_must_be_a_url() -> None:
    with pytest.raises(ValueError, match="must be an http"):
        FetchSettings(trusted_origins=["ftp://x"])
    rules = FetchSettings(trusted_origins=["https://Gateway.Example.org/api"])
    assert rules.trusted_origins == ["https://gateway.example.org:443"]
    assert httpx.URL("https://gateway.example.org/api").host == "gateway.example.org"
