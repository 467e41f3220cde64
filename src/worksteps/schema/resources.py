"""Executables, compute, storage, volume mounts and data resources, discriminated by ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from worksteps.schema import kinds
from worksteps.schema.common import LifecycleComponent, MinMax, WireModel

__all__ = [
    "ComputeResource",
    "DataResource",
    "DockerContainer",
    "DockerImage",
    "DockerNetwork",
    "DockerPlatform",
    "DockerPort",
    "Executable",
    "IvoaBlock",
    "IvoaDataResource",
    "JupyterNotebook",
    "RucioBlock",
    "RucioDataResource",
    "S3DataResource",
    "SimpleComputeResource",
    "SimpleDataResource",
    "SimpleStorageResource",
    "SimpleVolumeMount",
    "SingularityContainer",
    "SkaoBlock",
    "SkaoDataResource",
    "StorageResource",
]


class DockerPlatform(WireModel):
    architecture: str | None = None
    os: str | None = None


class DockerImage(WireModel):
    locations: list[str] | None = None
    digest: str | None = None
    platform: DockerPlatform | None = None


class DockerInternalPort(WireModel):
    port: int | None = Field(None, ge=1, le=65535)


class DockerExternalPort(WireModel):
    port: int | None = Field(None, ge=1, le=65535)
    addresses: list[str] | None = None


class DockerPort(WireModel):
    access: bool | None = None
    internal: DockerInternalPort | None = None
    external: DockerExternalPort | None = None
    protocol: str | None = None
    path: str | None = None


class DockerNetwork(WireModel):
    ports: list[DockerPort] | None = None


class DockerContainer(LifecycleComponent):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml"
    ] = kinds.EXEC_DOCKER
    image: DockerImage | None = None
    privileged: bool | None = None
    command: list[str] | None = None
    entrypoint: str | None = None
    environment: dict[str, str] | None = None
    network: DockerNetwork | None = None


class SingularityContainer(LifecycleComponent):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/singularity-container.yaml"
    ] = kinds.EXEC_SINGULARITY
    location: str | None = None


class JupyterNotebook(LifecycleComponent):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/jupyter-notebook.yaml"
    ] = kinds.EXEC_JUPYTER
    location: str | None = None


Executable = Annotated[
    DockerContainer | SingularityContainer | JupyterNotebook, Field(discriminator="kind")
]


class SimpleVolumeMount(LifecycleComponent):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/volume/simple-volume-mount.yaml"
    ] = kinds.VOLUME_SIMPLE
    path: str | None = Field(None, max_length=4096)
    mode: Literal["READONLY", "READWRITE"] | None = None
    resource: str | None = None


class SimpleComputeResource(LifecycleComponent):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml"
    ] = kinds.COMPUTE_SIMPLE
    cores: MinMax | None = None
    memory: MinMax | None = None
    volumes: list[SimpleVolumeMount] | None = None


ComputeResource = Annotated[SimpleComputeResource, Field(discriminator="kind")]


class SimpleStorageResource(LifecycleComponent):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/storage/simple-storage-resource.yaml"
    ] = kinds.STORAGE_SIMPLE
    size: MinMax | None = None
    data: list[str] | None = None


StorageResource = Annotated[SimpleStorageResource, Field(discriminator="kind")]


class _DataResource(LifecycleComponent):
    storage: str | None = None


class SimpleDataResource(_DataResource):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/simple-data-resource.yaml"
    ] = kinds.DATA_SIMPLE
    location: str | None = None


class S3DataResource(_DataResource):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/S3-data-resource.yaml"
    ] = kinds.DATA_S3
    endpoint: str | None = None
    template: str | None = None
    bucket: str | None = None
    object: str | None = None


class RucioBlock(WireModel):
    endpoint: str | None = None
    scope: str | None = None
    object: str | None = None
    type: Literal["FILE", "CONTAINER", "DATASET"] | None = None


class RucioDataResource(_DataResource):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/rucio-data-resource.yaml"
    ] = kinds.DATA_RUCIO
    rucio: RucioBlock | None = None


class ObsCore(WireModel):
    obs_id: str | None = None
    obs_collection: str | None = None
    obs_publisher_did: str | None = None
    obs_creator_did: str | None = None
    dataproduct_type: str | None = None
    calib_level: int | None = None
    access_url: str | None = None
    access_format: str | None = None


class DataLink(WireModel):
    ID: str | None = None
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    description: str | None = None
    semantics: str | None = None
    content_type: str | None = None
    content_length: int | None = Field(None, ge=0)
    content_qualifier: str | None = None
    local_semantics: str | None = None
    link_auth: str | None = None
    link_authorized: str | None = None


class IvoaBlock(WireModel):
    ivoid: str | None = None
    obscore: ObsCore | None = None
    datalink: DataLink | None = None


class IvoaDataResource(_DataResource):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/ivoa-data-resource.yaml"
    ] = kinds.DATA_IVOA
    ivoa: IvoaBlock | None = None


class SkaoChecksum(WireModel):
    type: str | None = None
    value: str | None = None


class SkaoReplica(WireModel):
    rsename: str | None = None
    dataurl: str | None = None


class SkaoBlock(WireModel):
    namespace: str | None = None
    objectname: str | None = None
    objecttype: Literal["FILE", "CONTAINER", "DATASET"] | None = None
    datasize: int | None = Field(None, ge=0)
    checksum: SkaoChecksum | None = None
    replicas: list[SkaoReplica] | None = None


class SkaoDataResource(_DataResource):
    kind: Literal[
        "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/skao-data-resource.yaml"
    ] = kinds.DATA_SKAO
    ivoa: IvoaBlock | None = None
    skao: SkaoBlock | None = None


DataResource = Annotated[
    SimpleDataResource | S3DataResource | RucioDataResource | IvoaDataResource | SkaoDataResource,
    Field(discriminator="kind"),
]
