"""``worksteps serve …`` and ``up`` refuse bad or unsafe settings with a readable message."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from worksteps.cli.main import app


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env or {})
    return result.exit_code, result.output


def test_the_gateway_refuses_the_published_cookie_secret() -> None:
    code, output = _run("serve", "gateway", env={"WORKSTEPS_GATEWAY_COOKIE_SECRET": ""})
    assert code == 2 and "cookie_secret" in output


def test_the_editor_needs_an_issuer() -> None:
    code, output = _run("serve", "editor")
    assert code == 2 and "auth" in output


def test_a_broken_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "execution.yaml"
    config.write_text("- just\n- a list\n")
    code, output = _run("serve", "execution", "--config", str(config))
    assert code == 2 and "mapping" in output
    config.write_text("deadline: -1\nauth: {issuer: http://127.0.0.1:1}\n")
    code, output = _run("serve", "execution", "--config", str(config))
    assert code == 2 and "deadline" in output


def test_up_refuses_an_inconsistent_federation(tmp_path: Path) -> None:
    config = tmp_path / "federation.yaml"
    config.write_text("sites: [{name: site-a, cached: ['nope/nothing:1']}]\n")
    code, output = _run("up", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "unknown images" in output
