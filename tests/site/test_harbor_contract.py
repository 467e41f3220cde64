"""Contract: the real oras client and the Harbor adapter against the Harbor emulator over HTTP.

Two emulators run per federation: the site's Harbor and the upstream registry its images are
replicated from (the same image configuration, so the same bytes and digests).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oras.client
import oras.provider
import pytest

from loopback_support import Clock
from worksteps.core.serving import ServedApp, serve_in_thread
from worksteps.emulators.faults import FaultInjector, FaultRule
from worksteps.emulators.harbor import (
    HarborConfig,
    ImageSpec,
    ProjectSpec,
    UpstreamSpec,
    UserSpec,
    create_app,
)
from worksteps.site.errors import PermanentSiteError, SiteNotFound, TransientSiteError
from worksteps.site.harbor import HarborImages
from worksteps.site.images import (
    DigestMismatch,
    ImageRef,
    ImageRegistry,
    InvalidImageReference,
    PullState,
    PullStatus,
)

ADMIN = ("admin", "Harbor12345")
OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


def config(**overrides: Any) -> HarborConfig:
    settings: dict[str, Any] = {
        "projects": [
            ProjectSpec(name="skaha"),
            ProjectSpec(name="private", public=False, members=["alice"]),
        ],
        "images": [
            ImageSpec(project="skaha", repository="notebook", tag="1.0", layers=[4000, 90_000]),
            ImageSpec(
                project="skaha",
                repository="carta/viewer",
                tag="4.1",
                layers=[100_000, 200_000, 300_000],
                media_type="docker",
                cached=False,
            ),
            ImageSpec(
                project="skaha",
                repository="broken",
                tag="1",
                layers=[50_000, 50_000, 50_000, 50_000],
                cached=False,
                replication_fails=True,
            ),
            ImageSpec(project="private", repository="casa", tag="6.6", layers=[3000]),
            ImageSpec(
                project="skaha",
                repository="corrupt",
                tag="1",
                layers=[100, 2000],
                corrupt_layers=[1],
            ),
        ],
        "users": [
            UserSpec(name="admin", password="Harbor12345", admin=True),
            UserSpec(name="alice", password="wonder"),
        ],
        "pull_rate": 100_000.0,
    }
    settings.update(overrides)
    return HarborConfig(**settings)


class Federation:
    """A site Harbor (with a controllable clock) and its upstream registry."""

    def __init__(self, site: ServedApp, app: FaultInjector, upstream: ServedApp, clock: Clock):
        self.site = site
        self.app = app
        self.upstream = upstream
        self.clock = clock
        self.host = site.url.removeprefix("http://")

    def images(self, **options: Any) -> HarborImages:
        options.setdefault("credentials", ADMIN)
        options.setdefault("upstream", "central")
        options.setdefault("timeout", 10.0)
        return HarborImages(self.site.url, **options)

    def oras(self) -> oras.provider.Registry:
        return oras.client.OrasClient(hostname=self.host, insecure=True)


def _federation(clock: Clock | None = None, **overrides: Any) -> Iterator[Federation]:
    site_clock = clock or Clock()
    upstream_app = create_app(config(**overrides).as_upstream())
    with serve_in_thread(upstream_app) as upstream:
        link = UpstreamSpec(name="central", url=upstream.url)
        app = create_app(config(upstream=link, **overrides), clock=clock or time.time)
        with serve_in_thread(app) as site:
            yield Federation(site, app, upstream, site_clock)


@pytest.fixture(scope="module")
def shared() -> Iterator[Federation]:
    """Read-only tests share one federation running on real time."""
    yield from _federation()


@pytest.fixture
def federation() -> Iterator[Federation]:
    """A fresh federation whose site clock the test moves."""
    yield from _federation(Clock())


def image(text: str) -> ImageRef:
    return ImageRef.parse(text)


# -- the real oras client -------------------------------------------------------------------


def test_oras_follows_the_bearer_challenge(shared: Federation) -> None:
    registry = shared.oras()
    tokens_before = shared.app.count("GET", r"^/service/token$")
    manifest = registry.get_manifest(f"{shared.host}/skaha/notebook:1.0")
    registry.session.close()
    assert manifest["mediaType"] == OCI
    assert [layer["size"] for layer in manifest["layers"]] == [4000, 90_000]
    assert shared.app.count("GET", r"^/service/token$") == tokens_before + 1


def test_oras_pull_writes_blobs_that_match_their_digests(
    shared: Federation, tmp_path: Path
) -> None:
    registry = shared.oras()
    files = registry.pull(f"{shared.host}/skaha/notebook:1.0", outdir=str(tmp_path))
    tags = registry.get_tags(f"{shared.host}/skaha/notebook")
    registry.session.close()
    assert len(files) == 2
    for path in files:
        digest = "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert os.path.basename(path) == digest
    assert tags == ["1.0"]


def test_oras_download_blob_and_docker_media_type(federation: Federation, tmp_path: Path) -> None:
    asyncio.run(_copy(federation, "skaha/carta/viewer:4.1"))
    registry = federation.oras()
    target = f"{federation.host}/skaha/carta/viewer:4.1"
    with pytest.raises(ValueError, match="Not Found"):
        registry.get_manifest(target, allowed_media_type=[OCI])
    manifest = registry.get_manifest(target, allowed_media_type=[DOCKER])
    layer = manifest["layers"][2]
    path = registry.download_blob(target, layer["digest"], str(tmp_path / "layer"))
    registry.session.close()
    assert manifest["mediaType"] == DOCKER
    assert "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest() == layer["digest"]
    assert Path(path).stat().st_size == 300_000


def test_oras_private_repository_needs_a_member(shared: Federation) -> None:
    target = f"{shared.host}/private/casa:6.6"
    anonymous = shared.oras()
    with pytest.raises(ValueError, match="Unauthorized"):
        anonymous.get_manifest(target)
    member = shared.oras()
    member.auth.set_basic_auth("alice", "wonder")
    assert member.get_manifest(target)["layers"][0]["size"] == 3000
    anonymous.session.close()
    member.session.close()


# -- the adapter: inspect -------------------------------------------------------------------


async def test_adapter_satisfies_the_protocol(shared: Federation) -> None:
    async with shared.images() as images:
        assert isinstance(images, ImageRegistry)


async def test_inspect_present_image(shared: Federation) -> None:
    registry = shared.oras()
    head = registry.do_request(f"http://{shared.host}/v2/skaha/notebook/manifests/1.0", "HEAD")
    registry.session.close()
    async with shared.images() as images:
        info = await images.inspect(image("images.example.org/skaha/notebook:1.0"))
    assert info.present
    assert info.digest == head.headers["Docker-Content-Digest"]
    assert info.architecture == "amd64"
    assert info.media_type == OCI
    assert info.size is not None and info.size > 94_000
    assert info.reference == f"{shared.host}/skaha/notebook:1.0@{info.digest}"
    assert info.pushed_at is not None


async def test_inspect_absent_image_reports_the_upstream_copy(shared: Federation) -> None:
    async with shared.images() as images:
        info = await images.inspect(image("skaha/carta/viewer:4.1"))
    upstream = oras.client.OrasClient(hostname=shared.upstream.url[7:], insecure=True)
    reply = upstream.do_request(
        f"{shared.upstream.url}/v2/skaha/carta/viewer/manifests/4.1", "HEAD"
    )
    upstream.session.close()
    assert not info.present
    assert info.digest == reply.headers["Docker-Content-Digest"]
    assert info.layers_size is not None and info.layers_size > 600_000
    assert info.media_type == DOCKER


async def test_inspect_image_that_is_nowhere(shared: Federation) -> None:
    async with shared.images() as images:
        with pytest.raises(SiteNotFound):
            await images.inspect(image("skaha/nothing:1"))
        with pytest.raises(SiteNotFound):
            await images.inspect(image("noproject/nothing:1"))


async def test_inspect_without_an_upstream_endpoint(shared: Federation) -> None:
    async with shared.images(upstream="not-configured") as images:
        info = await images.inspect(image("skaha/carta/viewer:4.1"))
        with pytest.raises(PermanentSiteError, match="no registry endpoint"):
            await images.ensure_available(image("skaha/carta/viewer:4.1"))
    assert (info.present, info.digest) == (False, None)


# -- the adapter: copying in ----------------------------------------------------------------


async def _copy(federation: Federation, name: str) -> None:
    async with federation.images() as images:
        ref = await images.ensure_available(image(name))
        assert ref is not None
        federation.clock.now += 3600
        assert (await images.status(ref)).state is PullState.SUCCEEDED


async def test_present_image_needs_no_copy(federation: Federation) -> None:
    async with federation.images() as images:
        assert await images.ensure_available(image("skaha/notebook:1.0")) is None
    assert federation.app.count("POST", "/replication/") == 0


async def test_copy_reports_byte_progress_until_done(federation: Federation) -> None:
    wanted = image("skaha/carta/viewer:4.1")
    async with federation.images() as images:
        before = await images.inspect(wanted)
        ref = await images.ensure_available(wanted)
        assert ref is not None
        assert await images.ensure_available(wanted) == ref  # the running copy is reused
        seen: list[PullStatus] = []
        for step in (0.0, 1.5, 2.0, 10.0):  # layers of 100, 200, 300 kB at 100 kB/s
            federation.clock.now += step
            seen.append(await images.status(ref))
        after = await images.inspect(wanted)
        again = await images.ensure_available(wanted)
    states = [s.state for s in seen]
    assert states == [PullState.RUNNING] * 3 + [PullState.SUCCEEDED]
    done = [s.bytes_done for s in seen]
    assert all(s.bytes_total == before.layers_size for s in seen)
    assert done[0] is not None and done[0] < 1000  # only the config blob
    assert done == sorted(done)
    assert 100_000 < (done[1] or 0) < (done[2] or 0) < (seen[3].bytes_total or 0)
    assert seen[3].bytes_done == seen[3].bytes_total
    assert [s.percent for s in seen][-1] == 100.0
    assert seen[3].ended_at is not None and seen[3].started_at is not None
    assert after.present and after.digest == before.digest
    assert again is None
    assert federation.app.count("POST", r"/replication/executions$") == 1
    assert federation.app.count("POST", r"/replication/policies$") == 1


async def test_a_second_copy_reuses_the_policy(federation: Federation) -> None:
    wanted = image("skaha/broken:1")
    async with federation.images() as images:
        first = await images.ensure_available(wanted)
        federation.clock.now += 3600
        second = await images.ensure_available(wanted)
    assert first != second
    assert federation.app.count("POST", r"/replication/policies$") == 1
    assert federation.app.count("POST", r"/replication/executions$") == 2


async def test_failed_copy_is_a_status_not_an_exception(federation: Federation) -> None:
    async with federation.images() as images:
        ref = await images.ensure_available(image("skaha/broken:1"))
        assert ref is not None
        federation.clock.now += 3600
        status = await images.status(ref)
        present = (await images.inspect(image("skaha/broken:1"))).present
    assert status.state is PullState.FAILED
    assert "skaha/broken:[1]" in status.message
    assert status.bytes_total is not None and 0 < (status.bytes_done or 0) < status.bytes_total
    assert not present


async def test_copy_on_real_time_finishes() -> None:
    live = _federation(pull_rate=3e6)  # about 0.2 s for 600 kB
    federation = next(live)
    async with federation.images() as images:
        ref = await images.ensure_available(image("skaha/carta/viewer:4.1"))
        assert ref is not None
        status = await images.status(ref)
        while not status.state.finished:
            await asyncio.sleep(0.2)
            status = await images.status(ref)
    live.close()
    assert status.state is PullState.SUCCEEDED


async def test_unknown_references_and_images(federation: Federation) -> None:
    async with federation.images() as images:
        with pytest.raises(SiteNotFound):
            await images.status("999")
        with pytest.raises(SiteNotFound):
            await images.status("not-an-id")
        with pytest.raises(SiteNotFound):
            await images.ensure_available(image("skaha/not-upstream:1"))


# -- the adapter: verify --------------------------------------------------------------------


async def test_verify_streams_every_blob_with_progress(shared: Federation) -> None:
    progress: list[tuple[int, int]] = []
    async with shared.images() as images:
        info = await images.verify(
            image("skaha/notebook:1.0"), lambda d, t: progress.append((d, t))
        )
        pinned = await images.verify(image(f"skaha/notebook@{info.digest}"))
    total = progress[-1][1]
    assert progress[-1] == (total, total)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert total == info.layers_size and total > 94_000
    assert pinned.digest == info.digest


async def test_verify_detects_corrupt_bytes(shared: Federation) -> None:
    async with shared.images() as images:
        with pytest.raises(DigestMismatch):
            await images.verify(image("skaha/corrupt:1"))
        with pytest.raises(SiteNotFound):
            await images.verify(image("skaha/carta/viewer:9.9"))


async def test_verify_private_image_with_member_credentials(shared: Federation) -> None:
    async with shared.images(credentials=("alice", "wonder")) as images:
        info = await images.verify(image("private/casa:6.6"))
    assert info.present and info.layers_size is not None


# -- the adapter: failures become site errors -----------------------------------------------


async def test_rest_faults_are_transient(federation: Federation) -> None:
    federation.app.rules = [FaultRule(path="^/api/", error_rate=1.0, status=503)]
    async with federation.images() as images:
        with pytest.raises(TransientSiteError) as caught:
            await images.inspect(image("skaha/notebook:1.0"))
    assert caught.value.status == 503


async def test_registry_faults_fail_fast_and_transient(federation: Federation) -> None:
    federation.app.rules = [FaultRule(path="/manifests/", error_rate=1.0, status=500)]
    started = time.monotonic()
    async with federation.images() as images:
        with pytest.raises(TransientSiteError):
            await images.verify(image("skaha/notebook:1.0"))
    assert time.monotonic() - started < 2  # oras' own sleeping retries are bypassed


async def test_slow_answers_time_out(federation: Federation) -> None:
    federation.app.rules = [FaultRule(path="^/api/", latency=1.0)]
    async with federation.images(timeout=0.2) as images:
        with pytest.raises(TransientSiteError, match="timed out"):
            await images.inspect(image("skaha/notebook:1.0"))


async def test_wrong_credentials_are_permanent(shared: Federation) -> None:
    async with shared.images(credentials=("admin", "wrong")) as images:
        with pytest.raises(PermanentSiteError) as rest:
            await images.inspect(image("skaha/notebook:1.0"))
        with pytest.raises(PermanentSiteError) as registry:
            await images.verify(image("skaha/notebook:1.0"))
    assert rest.value.status == 401
    assert not isinstance(rest.value, SiteNotFound)
    assert registry.value.status == 401


async def test_unreachable_upstream_is_transient() -> None:
    app = create_app(config(upstream=UpstreamSpec(name="central", url="http://127.0.0.1:9")))
    with serve_in_thread(app) as site:
        async with HarborImages(site.url, credentials=ADMIN, upstream="central") as images:
            with pytest.raises(TransientSiteError):
                await images.inspect(image("skaha/carta/viewer:4.1"))


# -- image references -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images.canfar.net/skaha/notebook:1.0", ("images.canfar.net", "skaha", "notebook", "1.0")),
        ("127.0.0.1:8080/a/b/c:2", ("127.0.0.1:8080", "a", "b/c", "2")),
        ("skaha/notebook", (None, "skaha", "notebook", None)),
        ("localhost/p/r:x", ("localhost", "p", "r", "x")),
    ],
)
def test_image_references_parse(text: str, expected: tuple[Any, ...]) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.project, ref.repository, ref.tag) == expected
    assert str(ref) == text
    assert ref.reference == (ref.tag or "latest")


def test_digest_pinned_reference() -> None:
    digest = "sha256:" + "ab" * 32
    ref = ImageRef.parse(f"harbor.host/project/repo:tag@{digest}")
    assert (ref.tag, ref.digest, ref.reference, ref.name) == ("tag", digest, digest, "project/repo")
    assert str(ref.at("other.host")) == f"other.host/project/repo:tag@{digest}"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("notebook", "project and a repository"),
        ("host.org/notebook:1", "project and a repository"),
        ("Skaha/notebook", "lower-case"),
        ("skaha/notebook:", "bad tag"),
        ("skaha/notebook@sha256:abc", "64 hex"),
        (" skaha/notebook", "spaces"),
        ("bad_host.org:x/p/r", "bad host"),
    ],
)
def test_bad_image_references_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(InvalidImageReference, match=complaint):
        ImageRef.parse(text)
