"""Run the ``worksteps`` CLI in-process with its own configuration home, as a person would."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from worksteps.cli.main import app

BROWSER = Path(__file__).with_name("signin_browser.py")


class Terminal:
    """One person's terminal: a config home (their credentials), a gateway, a sign-in name."""

    def __init__(self, home: Path, gateway: str, user: str) -> None:
        self.env = {
            "XDG_CONFIG_HOME": str(home),
            "WORKSTEPS_GATEWAY": gateway,
            "BROWSER": f"{sys.executable} {BROWSER} %s",
            "SIGNIN_USER": user,
            "COLUMNS": "200",
        }

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))
