"""A create request (``POST /v1/session``) checked in the real service's order, with its words.

The order matters because a request with several faults gets the first one's message:
image, type, cores, ram, name, the user's session quota, then gpus (PostAction.doAction).
Parameters come from the query string and the form body alike; the first value of a name
counts, except ``env`` which repeats.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from worksteps.core.serving import free_port
from worksteps.emulators.skaha.config import SESSION_KINDS, SkahaConfig
from worksteps.emulators.skaha.errors import SkahaError
from worksteps.emulators.skaha.model import SessionRecord, connect_url
from worksteps.emulators.skaha.supervisor import SessionSupervisor

__all__ = ["build_session"]

Params = Sequence[tuple[str, str]]

_NAME = re.compile(r"[A-Za-z0-9\-]+")
_INTEGER = re.compile(r"[+-]?\d{1,9}")


def _first(params: Params, key: str) -> str | None:
    return next((value for name, value in params if name == key), None)


def _option(raw: str | None, key: str, options: Sequence[int]) -> int | None:
    """A resource parameter: absent or blank is None; anything not an option is refused."""
    if raw is None or not raw.strip():
        return None
    if _INTEGER.fullmatch(raw) and int(raw) in options:
        return int(raw)
    raise SkahaError(400, f"Invalid value for '{key}': {raw}")


def _environment(values: Sequence[str]) -> dict[str, str]:
    """``env`` entries; like Skaha, an entry is used only when it splits into exactly K and V.

    So a value that itself contains '=' is silently dropped, as on the real service.
    """
    env: dict[str, str] = {}
    for entry in values:
        parts = entry.split("=")
        if len(parts) == 2:
            env[parts[0]] = parts[1]
    return env


def _session_type(image: str, requested: str | None, config: SkahaConfig) -> str:
    kind = requested.strip() if requested and requested.strip() else "headless"
    if not image.strip():
        raise SkahaError(400, "image is required")
    if not any(image.startswith(host) for host in config.registry_hosts):
        hosts = ", ".join(config.registry_hosts)
        raise SkahaError(400, f"session image '{image}' must come from one of [{hosts}]")
    if kind.lower() not in SESSION_KINDS:
        raise SkahaError(400, f"Invalid session type: {kind}")
    return kind.lower()


def build_session(
    params: Params,
    *,
    user: str,
    config: SkahaConfig,
    supervisor: SessionSupervisor,
    sessions_host: str,
) -> SessionRecord:
    """The new session a create request asks for; SkahaError(400) with Skaha's message if not."""
    image = _first(params, "image")
    if image is None:
        raise SkahaError(400, "Missing parameter 'image'")
    kind = _session_type(image, _first(params, "type"), config)
    cores = _option(_first(params, "cores"), "cores", config.core_options)
    ram = _option(_first(params, "ram"), "ram", config.ram_options)
    name = _first(params, "name")
    if name is None or not name.strip():
        raise SkahaError(400, "Missing parameter 'name'")
    if not _NAME.fullmatch(name):
        raise SkahaError(400, "name can only contain alpha-numeric chars and '-'")
    if kind != "headless" and supervisor.interactive_count(user) >= config.max_user_sessions:
        raise SkahaError(
            400,
            f"User {user} has reached the maximum of {config.max_user_sessions} active sessions.",
        )
    gpus = _option(_first(params, "gpus"), "gpus", config.gpu_options) or 0

    command: list[str] | None = None
    env: dict[str, str] = {}
    if kind == "headless":
        cmd = _first(params, "cmd")
        args = _first(params, "args") or ""
        if cmd:
            command = [cmd, *(arg for arg in args.split(" ") if arg)]
        env = _environment([value for key, value in params if key == "env"])

    session_id = supervisor.new_id()
    port = free_port(config.notebook_host) if kind == "notebook" else None
    url = connect_url(
        kind,
        session_id,
        sessions_host=config.sessions_host or sessions_host,
        notebook_base=f"http://{config.notebook_host}:{port}",
        home_path=f"{config.top_level_directory}/home/{user}",
    )
    return SessionRecord(
        id=session_id,
        user=user,
        name=name.lower(),  # Skaha keeps the name as a lower-case job label
        kind=kind,
        image=image,
        request_cores=cores or config.default_request_cores,
        limit_cores=cores or config.default_limit_cores,
        request_ram=ram or config.default_request_ram_gb,
        limit_ram=ram or config.default_limit_ram_gb,
        gpus=gpus,
        fixed=cores is not None and ram is not None,
        command=command,
        env=env,
        created=datetime.now(UTC),
        connect_url=url,
        port=port,
    )
