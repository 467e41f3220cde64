"""Emulated Harbor: REST API v2.0, OCI distribution ``/v2/`` and the registry token service.

A site's Harbor holds some images (``cached``) and can copy others in from its upstream
registry by pull-mode replication, taking the time the layer sizes and ``pull_rate`` imply.
Blobs are real bytes that hash to their digests, so the real ``oras`` client can pull them.
Start an upstream for a site with ``create_app(site_config.as_upstream())``.

    app.py              create_app(config) -> FaultInjector
    config.py           HarborConfig and its parts
    content.py          deterministic manifests, config blobs and layers
    state.py            what is present at an instant (no background tasks)
    auth.py             accounts, basic/bearer auth, registry tokens
    rest.py             /api/v2.0 projects, repositories, artifacts, registries
    replication.py      policies, executions, tasks: the time model of a copy
    replication_api.py  /api/v2.0/replication/*
    oci.py              /v2/ and /service/token
"""

from worksteps.emulators.harbor.app import create_app
from worksteps.emulators.harbor.config import (
    HarborConfig,
    ImageSpec,
    ProjectSpec,
    UpstreamSpec,
    UserSpec,
)

__all__ = ["HarborConfig", "ImageSpec", "ProjectSpec", "UpstreamSpec", "UserSpec", "create_app"]
