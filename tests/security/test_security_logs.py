"""Bearer tokens never reach a log: a whole flow (and refused tokens) with every logger of the
process at DEBUG, its stdout and stderr, and every file the federation wrote, searched for
any part of the tokens that identifies them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from security_support import wait_until_ended

from worksteps.client import ClientError, WorkstepsClient
from worksteps.federation import Federation


@pytest.fixture
def everything_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger that exists (uvicorn's, httpx's, SQLAlchemy's, ours) at DEBUG."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    try:
        yield caplog
    finally:
        for logger, level in levels.items():
            logger.setLevel(level)


def _telltales(token: str) -> list[str]:
    """The whole token and its two parts unique to it (claims and signature); the header
    (algorithm and key id) is the same in every token of the issuer."""
    _, claims, signature = token.split(".")
    return [token, claims, signature[:40], signature[-40:]]


def _flow(federation: Federation, alice: WorkstepsClient) -> None:
    made = alice.create("template", template="python-script", name="log flow")
    made = alice.add_data(made["uuid"], ["demo:psf-0004.fits"], made["version"])
    alice.edit(made["uuid"], "compute", made["compute"] | {"cores": {"min": 1}}, made["version"])
    execution = alice.execute(made["uuid"])
    best = min(execution["offers"], key=lambda o: o["rank"])
    alice.select(execution["id"], best["offer"])
    for event in alice.events(execution["id"]):
        if event.get("phase") in ("AVAILABLE", "RUNNING"):
            break
    alice.execution(execution["id"], wait=1)
    alice.cancel(execution["id"])
    wait_until_ended(alice, execution["id"])
    alice.provenance(execution["id"])
    base = f"{federation.gateway}/api"
    alice.create("provenance", url=f"{base}/executions/{execution['id']}/provenance")
    alice.create("history", url=f"{base}/worksteps/{made['uuid']}")  # the token goes along
    with pytest.raises(ClientError):
        alice.create("history", url=f"{base}/worksteps/not-there")


def test_tokens_never_appear_in_logs_output_or_files(
    federation: Federation,
    everything_at_debug: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    token = federation.issuer.mint("alice")
    refused = {
        "expired": federation.issuer.mint("alice", lifetime=1, issued_at=time.time() - 600),
        "wrong audience": federation.issuer.mint("alice", audience="elsewhere"),
    }
    with WorkstepsClient(federation.gateway, token) as alice:
        _flow(federation, alice)
    for bad in refused.values():
        answer = httpx.get(
            f"{federation.gateway}/api/worksteps", headers={"Authorization": f"Bearer {bad}"}
        )
        assert answer.status_code == 401
    records = everything_at_debug.records
    assert len(records) > 100, "the flow logged too little: are the loggers at DEBUG?"
    assert any("bearer token refused" in r.getMessage() for r in records)
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in records
    )
    out, err = capfd.readouterr()
    for kind, secret in {"valid": token, **refused}.items():
        for part in _telltales(secret):
            assert part not in logged, f"the {kind} token is in a log record"
            assert part not in out and part not in err, f"the {kind} token was printed"
    written = _files_with(federation.config.data_dir, [token, *refused.values()])
    assert not written, f"tokens were written to {written}"


def _files_with(directory: Path, tokens: list[str]) -> list[str]:
    """The files under ``directory`` (logs, databases, state) holding a part of a token."""
    parts = [p.encode() for t in tokens for p in _telltales(t)]
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.is_fifo():
            content = path.read_bytes()
            if any(part in content for part in parts):
                found.append(str(path.relative_to(directory)))
    return found
