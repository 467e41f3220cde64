"""Kind URIs of the IVOA ExecutionBroker data model: the current ones, and every legacy alias.

The current generation is Calycopis-openapi v1.0 (``…/Calycopis-openapi/schema/v1.0/kinds/…``).
Older generations named the same things differently: the 2025 ``…/EB/schema/types/…-1.0``
names (with the ``computer`` family), the 2025-11 ``…/EB/schema/v1.0/types/…-1.0`` names, the
spec's ``executables`` / ``resources/{compute,data,storage}`` families, and the broker's own
``computer/`` typo. :func:`canonical_kind` maps any of them to the current URI and returns
``None`` for anything else (a malformed URI such as ``…/v1.0//types/…`` is not guessed at).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "COMPUTE_SIMPLE",
    "COST_SIMPLE",
    "DATA_IVOA",
    "DATA_RUCIO",
    "DATA_S3",
    "DATA_SIMPLE",
    "DATA_SKAO",
    "EXEC_DOCKER",
    "EXEC_JUPYTER",
    "EXEC_SINGULARITY",
    "KIND_BASE",
    "METRIC_SIMPLE",
    "OFFERSET",
    "SESSION_SCHEDULED",
    "SESSION_SIMPLE",
    "STORAGE_SIMPLE",
    "VOLUME_SIMPLE",
    "canonical_kind",
]

KIND_BASE: Final = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"

EXEC_DOCKER: Final = KIND_BASE + "executable/docker-container.yaml"
EXEC_SINGULARITY: Final = KIND_BASE + "executable/singularity-container.yaml"
EXEC_JUPYTER: Final = KIND_BASE + "executable/jupyter-notebook.yaml"
COMPUTE_SIMPLE: Final = KIND_BASE + "compute/simple-compute-resource.yaml"
STORAGE_SIMPLE: Final = KIND_BASE + "storage/simple-storage-resource.yaml"
VOLUME_SIMPLE: Final = KIND_BASE + "volume/simple-volume-mount.yaml"
DATA_SIMPLE: Final = KIND_BASE + "data/simple-data-resource.yaml"
DATA_S3: Final = KIND_BASE + "data/S3-data-resource.yaml"
DATA_RUCIO: Final = KIND_BASE + "data/rucio-data-resource.yaml"
DATA_IVOA: Final = KIND_BASE + "data/ivoa-data-resource.yaml"
DATA_SKAO: Final = KIND_BASE + "data/skao-data-resource.yaml"
SESSION_SIMPLE: Final = KIND_BASE + "session/simple-execution-session.yaml"
SESSION_SCHEDULED: Final = KIND_BASE + "session/scheduled-execution-session.yaml"
OFFERSET: Final = KIND_BASE + "offerset/execution-offerset.yaml"
COST_SIMPLE: Final = KIND_BASE + "costs/simple-minmax-float-cost.yaml"
METRIC_SIMPLE: Final = KIND_BASE + "metrics/simple-minmax-float-metric.yaml"

# (family, name) in any generation -> current URI.
_BY_NAME: Final[dict[tuple[str, str], str]] = {
    ("executable", "docker-container"): EXEC_DOCKER,
    ("executable", "singularity-container"): EXEC_SINGULARITY,
    ("executable", "jupyter-notebook"): EXEC_JUPYTER,
    ("compute", "simple-compute-resource"): COMPUTE_SIMPLE,
    ("storage", "simple-storage-resource"): STORAGE_SIMPLE,
    ("volume", "simple-volume-mount"): VOLUME_SIMPLE,
    ("data", "simple-data-resource"): DATA_SIMPLE,
    ("data", "s3-data-resource"): DATA_S3,
    ("data", "rucio-data-resource"): DATA_RUCIO,
    ("data", "ivoa-data-resource"): DATA_IVOA,
    ("data", "skao-data-resource"): DATA_SKAO,
    ("session", "simple-execution-session"): SESSION_SIMPLE,
    ("session", "scheduled-execution-session"): SESSION_SCHEDULED,
    ("session", "execution-session-response"): SESSION_SCHEDULED,
    ("offerset", "execution-offerset"): OFFERSET,
    ("offerset", "offerset-response"): OFFERSET,
    ("costs", "simple-minmax-float-cost"): COST_SIMPLE,
    ("metrics", "simple-minmax-float-metric"): METRIC_SIMPLE,
}

_PREFIXES: Final = (
    "www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/",
    "www.purl.org/ivoa.net/EB/schema/v1.0/types/",
    "www.purl.org/ivoa.net/EB/schema/types/",
)

_FAMILIES: Final[dict[str, str]] = {
    "executable": "executable",
    "executables": "executable",
    "compute": "compute",
    "computer": "compute",
    "resources/compute": "compute",
    "storage": "storage",
    "resources/storage": "storage",
    "volume": "volume",
    "volumes": "volume",
    "resources/volume": "volume",
    "data": "data",
    "resources/data": "data",
    "session": "session",
    "offerset": "offerset",
    "costs": "costs",
    "metrics": "metrics",
}


def canonical_kind(uri: str) -> str | None:
    """The current kind URI for ``uri`` in any known generation, else ``None``."""
    rest = uri.strip()
    for scheme in ("https://", "http://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
            break
    else:
        return None
    for prefix in _PREFIXES:
        if rest.startswith(prefix):
            rest = rest[len(prefix) :]
            break
    else:
        return None
    family, _, name = rest.rpartition("/")
    if family not in _FAMILIES or not name:
        return None
    for suffix in (".yaml", "-1.0"):
        name = name.removesuffix(suffix)
    return _BY_NAME.get((_FAMILIES[family], name.lower()))
