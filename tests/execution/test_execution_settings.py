"""The execution service's settings: from the environment (prefix WORKSTEPS_EXECUTION_,
nested with __), bounded, and refused when inconsistent."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from worksteps.execution.settings import ExecutionSettings


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORKSTEPS_EXECUTION_DATABASE_URL", "postgresql://u@db/execution")
    monkeypatch.setenv("WORKSTEPS_EXECUTION_SITES_FILE", str(tmp_path / "sites.yaml"))
    monkeypatch.setenv("WORKSTEPS_EXECUTION_DEADLINE", "2.5")
    monkeypatch.setenv("WORKSTEPS_EXECUTION_AUTH__ISSUER", "https://iam.example.org/")
    monkeypatch.setenv("WORKSTEPS_EXECUTION_RANKING__DATA_REMOTE", "900")
    settings = ExecutionSettings()
    assert settings.database_url == "postgresql://u@db/execution"
    assert settings.sites_file == tmp_path / "sites.yaml"
    assert settings.deadline == 2.5
    assert settings.auth.issuer == "https://iam.example.org/"
    assert settings.ranking.data_remote == 900
    assert settings.ranking.image_remote == 60  # the default


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({}, "auth"),
        ({"deadline": 30, "max_deadline": 10}, "max_deadline"),
        ({"deadline": 0}, "deadline"),
        ({"late_grace": 5, "max_deadline": 10}, "late_grace"),
        ({"unknown": 1}, "unknown"),
        ({"sites": [{"name": "a", "url": "http://h"}, {"name": "a", "url": "http://g"}]}, "unique"),
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, object], words: str) -> None:
    if words != "auth":
        values = {"auth": {"issuer": "https://iam.example.org"}, **values}
    with pytest.raises(ValidationError, match=words):
        ExecutionSettings(**values)  # type: ignore[arg-type]
