"""The Harbor emulator over real HTTP: token challenge, OCI pulls, REST API and replication."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from loopback_support import Clock
from worksteps.core.serving import serve_in_thread
from worksteps.emulators.faults import FaultInjector, FaultRule
from worksteps.emulators.harbor import (
    HarborConfig,
    ImageSpec,
    ProjectSpec,
    UpstreamSpec,
    UserSpec,
    create_app,
)

ADMIN = ("admin", "Harbor12345")
OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
TLS = ssl.create_default_context()  # built once: loading CA certificates per client is slow


def site_config(**overrides: Any) -> HarborConfig:
    settings: dict[str, Any] = {
        "projects": [
            ProjectSpec(name="skaha"),
            ProjectSpec(name="private", public=False, members=["alice"]),
        ],
        "images": [
            ImageSpec(project="skaha", repository="notebook", tag="1.0", layers=[5000, 70_000]),
            ImageSpec(project="skaha", repository="notebook", tag="1.1", layers=[6000]),
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
                layers=[100_000, 100_000, 100_000, 100_000],
                cached=False,
                replication_fails=True,
            ),
            ImageSpec(project="private", repository="casa", tag="6.6", layers=[3000]),
            ImageSpec(
                project="skaha", repository="corrupt", tag="1", layers=[2000], corrupt_layers=[0]
            ),
        ],
        "users": [
            UserSpec(name="admin", password="Harbor12345", admin=True),
            UserSpec(name="alice", password="wonder"),
            UserSpec(name="bob", password="builder"),
        ],
        "bearer_tokens": {"oidc-alice": "alice"},
        "upstream": UpstreamSpec(name="central", url="http://127.0.0.1:1"),
        "pull_rate": 100_000.0,
    }
    settings.update(overrides)
    return HarborConfig(**settings)


class Harbor:
    def __init__(self, url: str, app: FaultInjector, clock: Clock) -> None:
        self.url = url
        self.app = app
        self.clock = clock

    def client(self, auth: tuple[str, str] | None = ADMIN) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, timeout=10, verify=TLS)

    def api(self, auth: tuple[str, str] | None = ADMIN) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v2.0", auth=auth, timeout=10, verify=TLS)


@pytest.fixture(scope="module")
def reader() -> Iterator[Harbor]:
    """One emulator shared by the tests that neither move its clock nor copy images."""
    clock = Clock()
    app = create_app(site_config(), clock=clock)
    with serve_in_thread(app) as served:
        yield Harbor(served.url, app, clock)


@pytest.fixture
def harbor() -> Iterator[Harbor]:
    clock = Clock()
    app = create_app(site_config(), clock=clock)
    with serve_in_thread(app) as served:
        yield Harbor(served.url, app, clock)


def token(harbor: Harbor, scope: str, auth: tuple[str, str] | None = None) -> str:
    with harbor.client(auth) as client:
        reply = client.get("/service/token", params={"service": "harbor-registry", "scope": scope})
    assert reply.status_code == 200, reply.text
    value: str = reply.json()["token"]
    return value


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# -- OCI distribution: the token challenge --------------------------------------------------


def test_v2_challenges_with_the_harbor_token_realm(reader: Harbor) -> None:
    with reader.client(None) as client:
        root = client.get("/v2/")
        manifest = client.get("/v2/skaha/notebook/manifests/1.0")
    assert root.status_code == 401
    assert root.headers["www-authenticate"] == (
        f'Bearer realm="{reader.url}/service/token",service="harbor-registry"'
    )
    assert root.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert manifest.status_code == 401
    assert 'scope="repository:skaha/notebook:pull"' in manifest.headers["www-authenticate"]


def test_token_grants_only_what_the_caller_may_pull(reader: Harbor) -> None:
    anonymous = token(reader, "repository:private/casa:pull")
    alice = token(reader, "repository:private/casa:pull,push", auth=("alice", "wonder"))
    with reader.client(None) as client:
        refused = client.get("/v2/private/casa/manifests/6.6", headers=bearer(anonymous))
        allowed = client.get("/v2/private/casa/manifests/6.6", headers=bearer(alice))
        elsewhere = client.get("/v2/skaha/notebook/manifests/1.0", headers=bearer(alice))
        wrong = client.get("/service/token", auth=("alice", "nope"), params={"scope": "x"})
        garbage = client.get("/v2/", headers=bearer("not-a-token"))
    assert refused.status_code == 401
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert allowed.status_code == 200
    assert elsewhere.status_code == 401  # a token is scoped to the repositories it names
    assert wrong.status_code == 401
    assert garbage.status_code == 401


def test_tokens_expire(harbor: Harbor) -> None:
    value = token(harbor, "repository:skaha/notebook:pull")
    with harbor.client(None) as client:
        assert client.get("/v2/skaha/notebook/tags/list", headers=bearer(value)).status_code == 200
        harbor.clock.now += 1801
        assert client.get("/v2/skaha/notebook/tags/list", headers=bearer(value)).status_code == 401


def test_basic_credentials_work_on_v2_and_private_projects_need_membership(reader: Harbor) -> None:
    with reader.client(("bob", "builder")) as bob, reader.client(("alice", "wonder")) as alice:
        assert bob.get("/v2/").status_code == 200
        assert bob.get("/v2/private/casa/manifests/6.6").status_code == 403
        assert alice.get("/v2/private/casa/manifests/6.6").status_code == 200
        assert bob.get("/v2/_catalog").status_code == 403
    with reader.client(("bob", "wrong")) as client:
        assert client.get("/v2/").status_code == 401


# -- OCI distribution: content ----------------------------------------------------------------


def test_manifest_and_blobs_are_real_content_addressed_bytes(reader: Harbor) -> None:
    with reader.client() as client:
        reply = client.get("/v2/skaha/notebook/manifests/1.0", headers={"Accept": OCI})
        assert reply.status_code == 200
        digest = reply.headers["docker-content-digest"]
        assert digest == "sha256:" + hashlib.sha256(reply.content).hexdigest()
        assert reply.headers["content-type"] == OCI
        manifest = reply.json()
        assert [layer["size"] for layer in manifest["layers"]] == [5000, 70_000]
        for descriptor in [manifest["config"], *manifest["layers"]]:
            blob = client.get(f"/v2/skaha/notebook/blobs/{descriptor['digest']}")
            assert blob.status_code == 200
            assert len(blob.content) == descriptor["size"]
            assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == descriptor["digest"]
        config = json.loads(
            client.get(f"/v2/skaha/notebook/blobs/{manifest['config']['digest']}").content
        )
        assert config["architecture"] == "amd64"
        assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in manifest["layers"]]
        by_digest = client.get(f"/v2/skaha/notebook/manifests/{digest}")
        head = client.head("/v2/skaha/notebook/manifests/1.0")
    assert by_digest.content == reply.content
    assert head.status_code == 200
    assert head.headers["docker-content-digest"] == digest
    assert int(head.headers["content-length"]) == len(reply.content)


def test_manifest_media_type_must_be_accepted(harbor: Harbor) -> None:
    harbor.clock.now += 3600  # the copy of the docker image has long finished
    with harbor.client() as client:
        client.post("/api/v2.0/replication/policies", json=_policy("all", "skaha/carta/viewer"))
        client.post("/api/v2.0/replication/executions", json={"policy_id": 1})
        harbor.clock.now += 3600
        oci_only = client.get("/v2/skaha/carta/viewer/manifests/4.1", headers={"Accept": OCI})
        docker = client.get(
            "/v2/skaha/carta/viewer/manifests/4.1", headers={"Accept": f"{OCI}, {DOCKER}"}
        )
    assert oci_only.status_code == 404
    assert oci_only.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert docker.status_code == 200
    assert docker.headers["content-type"] == DOCKER
    assert docker.json()["mediaType"] == DOCKER


def test_unknown_names_and_blobs(reader: Harbor) -> None:
    with reader.client() as client:
        unknown_repo = client.get("/v2/skaha/nothing/manifests/1")
        unknown_tag = client.get("/v2/skaha/notebook/manifests/9.9")
        unknown_blob = client.head("/v2/skaha/notebook/blobs/sha256:" + "0" * 64)
        push = client.post("/v2/skaha/notebook/blobs/uploads/")
    assert unknown_repo.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert unknown_tag.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert unknown_blob.status_code == 404
    assert push.status_code == 405


def test_corrupt_layer_bytes_do_not_match_their_digest(reader: Harbor) -> None:
    with reader.client() as client:
        layer = client.get("/v2/skaha/corrupt/manifests/1").json()["layers"][0]
        blob = client.get(f"/v2/skaha/corrupt/blobs/{layer['digest']}")
    assert len(blob.content) == layer["size"]
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() != layer["digest"]


def test_tags_and_catalog_page_with_n_and_last(reader: Harbor) -> None:
    with reader.client() as client:
        first = client.get("/v2/skaha/notebook/tags/list", params={"n": 1})
        rest = client.get(first.links["next"]["url"])
        catalog = client.get("/v2/_catalog").json()["repositories"]
    assert first.json() == {"name": "skaha/notebook", "tags": ["1.0"]}
    assert rest.json()["tags"] == ["1.1"]
    assert "next" not in rest.links
    assert catalog == ["private/casa", "skaha/corrupt", "skaha/notebook"]


def test_identical_configuration_gives_identical_digests() -> None:
    spec = ImageSpec(project="skaha", repository="notebook", layers=[1234, 56789])
    digests = []
    for _ in range(2):
        app = create_app(HarborConfig(projects=[ProjectSpec(name="skaha")], images=[spec]))
        with serve_in_thread(app) as served, httpx.Client(auth=ADMIN, verify=TLS) as client:
            reply = client.head(f"{served.url}/v2/skaha/notebook/manifests/latest")
            digests.append(reply.headers["docker-content-digest"])
    assert digests[0] == digests[1]


# -- REST API ---------------------------------------------------------------------------------


def test_projects_visible_by_role_with_paging(reader: Harbor) -> None:
    with reader.api(None) as anonymous, reader.api() as admin:
        public = [p["name"] for p in anonymous.get("/projects").json()]
        first = admin.get("/projects", params={"page_size": 1})
        private = anonymous.get("/projects/private")
        by_id = admin.get("/projects/2").json()
    assert public == ["skaha"]
    assert first.headers["x-total-count"] == "2"
    assert 'rel="next"' in first.headers["link"]
    assert private.status_code == 401
    assert by_id["name"] == "private"
    assert by_id["metadata"]["public"] == "false"
    with reader.api(("bob", "builder")) as bob:
        assert bob.get("/projects/private").status_code == 403
    bearer_client = httpx.Client(
        base_url=reader.url + "/api/v2.0", headers=bearer("oidc-alice"), verify=TLS
    )
    with bearer_client:
        assert bearer_client.get("/projects/private").status_code == 200
        assert bearer_client.get("/projects", headers=bearer("bad")).status_code == 401


def test_repositories_and_artifacts(reader: Harbor) -> None:
    with reader.api() as api:
        repos = api.get("/projects/skaha/repositories").json()
        artifacts = api.get("/projects/skaha/repositories/notebook/artifacts").json()
        one = api.get("/projects/skaha/repositories/notebook/artifacts/1.0").json()
        by_digest = api.get(f"/projects/skaha/repositories/notebook/artifacts/{one['digest']}")
        tags = api.get("/projects/skaha/repositories/notebook/artifacts/1.0/tags").json()
        filtered = api.get(
            "/projects/skaha/repositories/notebook/artifacts", params={"q": "tags=1.1"}
        ).json()
        absent = api.get("/projects/skaha/repositories/carta%252Fviewer/artifacts/4.1")
        missing = api.get("/projects/skaha/repositories/nothing/artifacts/1")
        manifest = httpx.get(
            f"{reader.url}/v2/skaha/notebook/manifests/1.0", auth=ADMIN, verify=TLS
        )
    assert sorted(r["name"] for r in repos) == ["skaha/corrupt", "skaha/notebook"]
    assert {a["tags"][0]["name"] for a in artifacts} == {"1.0", "1.1"}
    assert one["digest"] == manifest.headers["docker-content-digest"]
    assert one["size"] == len(manifest.content) + sum(
        d["size"] for d in [manifest.json()["config"], *manifest.json()["layers"]]
    )
    assert one["manifest_media_type"] == OCI
    assert one["extra_attrs"]["architecture"] == "amd64"
    assert by_digest.json()["tags"][0]["name"] == "1.0"
    assert [t["name"] for t in tags] == ["1.0"]
    assert [a["tags"][0]["name"] for a in filtered] == ["1.1"]
    assert absent.status_code == 404
    assert absent.json()["errors"][0]["code"] == "NOT_FOUND"
    assert missing.status_code == 404


def test_pull_time_is_recorded(harbor: Harbor) -> None:
    with harbor.api() as api:
        before = api.get("/projects/skaha/repositories/notebook/artifacts/1.1").json()
        harbor.clock.now += 10
        httpx.get(f"{harbor.url}/v2/skaha/notebook/manifests/1.1", auth=ADMIN, verify=TLS)
        after = api.get("/projects/skaha/repositories/notebook/artifacts/1.1").json()
    assert before["pull_time"] == "0001-01-01T00:00:00.000Z"
    assert after["pull_time"].startswith("2027-01-15T08:00:10")


def test_replication_needs_an_administrator(reader: Harbor) -> None:
    with reader.api(None) as anonymous, reader.api(("alice", "wonder")) as alice:
        assert anonymous.get("/replication/executions").status_code == 401
        assert alice.post("/replication/executions", json={"policy_id": 1}).status_code == 403
        assert alice.get("/registries").status_code == 403
    with reader.api() as admin:
        registries = admin.get("/registries", params={"q": "name=central"}).json()
    assert [(r["id"], r["name"], r["type"]) for r in registries] == [(1, "central", "harbor")]


# -- replication ------------------------------------------------------------------------------


def _policy(name: str, repository: str, tag: str = "**") -> dict[str, Any]:
    return {
        "name": name,
        "src_registry": {"id": 1},
        "filters": [{"type": "name", "value": repository}, {"type": "tag", "value": tag}],
        "trigger": {"type": "manual"},
        "override": True,
        "enabled": True,
    }


def _start(api: httpx.Client, policy: dict[str, Any]) -> str:
    created = api.post("/replication/policies", json=policy)
    assert created.status_code == 201, created.text
    policy_id = int(created.headers["location"].rsplit("/", 1)[1])
    started = api.post("/replication/executions", json={"policy_id": policy_id})
    assert started.status_code == 201, started.text
    assert started.content == b""
    location: str = started.headers["location"]
    assert location.startswith("/api/v2.0/replication/executions/")
    return location.removeprefix("/api/v2.0")


def test_replication_copies_layer_by_layer_at_the_pull_rate(harbor: Harbor) -> None:
    with harbor.api() as api, harbor.client() as registry:
        execution = _start(api, _policy("carta", "skaha/carta/viewer", "4.1"))
        state = api.get(execution).json()
        assert (state["status"], state["total"], state["in_progress"]) == ("InProgress", 1, 1)
        tasks = api.get(execution + "/tasks").json()
        assert tasks[0]["src_resource"] == "skaha/carta/viewer:[4.1]"
        assert tasks[0]["status"] == "InProgress"
        assert registry.get("/v2/skaha/carta/viewer/manifests/4.1").status_code == 404
        # config (tiny) then 100 kB, 200 kB, 300 kB at 100 kB/s: layers land at ~1 s, 3 s, 6 s
        harbor.clock.now += 1.5
        assert api.get(execution).json()["status"] == "InProgress"
        assert api.get("/projects/skaha/repositories/carta%252Fviewer").status_code == 404
        harbor.clock.now += 5
        state = api.get(execution).json()
        artifact = api.get("/projects/skaha/repositories/carta%252Fviewer/artifacts/4.1")
        manifest = registry.get("/v2/skaha/carta/viewer/manifests/4.1", headers={"Accept": DOCKER})
    assert (state["status"], state["succeed"], state["in_progress"]) == ("Succeed", 1, 0)
    assert state["end_time"] > state["start_time"]
    assert artifact.status_code == 200
    assert artifact.json()["digest"] == manifest.headers["docker-content-digest"]


def test_blobs_land_before_the_manifest(harbor: Harbor) -> None:
    upstream_app = create_app(site_config().as_upstream())
    with serve_in_thread(upstream_app) as upstream, httpx.Client(auth=ADMIN, verify=TLS) as client:
        reply = client.get(f"{upstream.url}/v2/skaha/carta/viewer/manifests/4.1")
        layers = reply.json()["layers"]
    with harbor.api() as api, harbor.client() as registry:
        _start(api, _policy("carta", "skaha/carta/viewer", "4.1"))
        harbor.clock.now += 1.5  # config and the first layer have landed
        landed = [
            registry.head(f"/v2/skaha/carta/viewer/blobs/{layer['digest']}").status_code
            for layer in layers
        ]
        manifest = registry.head("/v2/skaha/carta/viewer/manifests/4.1")
        harbor.clock.now += 10
        copied = registry.get("/v2/skaha/carta/viewer/manifests/4.1", headers={"Accept": DOCKER})
    assert landed == [200, 404, 404]
    assert manifest.status_code == 404
    assert copied.content == reply.content  # the site now serves the upstream's bytes


def test_a_failing_copy_stops_half_way(harbor: Harbor) -> None:
    with harbor.api() as api:
        execution = _start(api, _policy("broken", "skaha/broken"))
        harbor.clock.now += 60
        state = api.get(execution).json()
        tasks = api.get(execution + "/tasks").json()
        artifact = api.get("/projects/skaha/repositories/broken/artifacts/1")
    assert (state["status"], state["failed"], state["total"]) == ("Failed", 1, 1)
    assert "skaha/broken:[1]" in state["status_text"]
    assert tasks[0]["status"] == "Failed"
    assert artifact.status_code == 404


def test_stopping_an_execution(harbor: Harbor) -> None:
    with harbor.api() as api:
        execution = _start(api, _policy("carta", "skaha/carta/viewer"))
        harbor.clock.now += 1
        assert api.put(execution).status_code == 200
        harbor.clock.now += 60
        state = api.get(execution).json()
        artifact = api.get("/projects/skaha/repositories/carta%252Fviewer/artifacts/4.1")
    assert (state["status"], state["stopped"]) == ("Stopped", 1)
    assert artifact.status_code == 404


def test_nothing_to_copy_succeeds_with_no_tasks(harbor: Harbor) -> None:
    with harbor.api() as api:
        execution = _start(api, _policy("none", "skaha/not-upstream"))
        state = api.get(execution).json()
    assert (state["status"], state["total"]) == ("Succeed", 0)
    assert state["status_text"] == "no resources need to be replicated"


def test_present_images_copy_at_once_and_executions_are_listed(harbor: Harbor) -> None:
    with harbor.api() as api:
        execution = _start(api, _policy("nb", "skaha/notebook"))
        state = api.get(execution).json()
        listed = api.get("/replication/executions", params={"policy_id": 1}).json()
        policies = api.get("/replication/policies", params={"name": "nb"}).json()
        again = api.post("/replication/policies", json=_policy("nb", "x/y"))
        bad = api.post("/replication/policies", json={"name": "z", "src_registry": {"id": 7}})
        unknown = api.get("/replication/executions/99")
    assert (state["status"], state["succeed"], state["total"]) == ("Succeed", 2, 2)
    assert [e["id"] for e in listed] == [1]
    assert policies[0]["src_registry"]["name"] == "central"
    assert again.status_code == 409
    assert bad.status_code == 400
    assert unknown.status_code == 404


def test_speed_limit_of_a_policy_slows_the_copy(harbor: Harbor) -> None:
    with harbor.api() as api:
        execution = _start(api, {**_policy("slow", "skaha/carta/viewer"), "speed": 10})
        harbor.clock.now += 30  # 600 kB at 10 KiB/s takes about a minute
        assert api.get(execution).json()["status"] == "InProgress"
        harbor.clock.now += 40
        assert api.get(execution).json()["status"] == "Succeed"


# -- faults and configuration -----------------------------------------------------------------


def test_fault_rules_apply_and_calls_are_counted(harbor: Harbor) -> None:
    with harbor.client() as client:
        client.put(
            "/_emulator/faults",
            json=[{"path": "^/api/v2.0/projects$", "error_rate": 1.0, "status": 503}],
        )
        assert client.get("/api/v2.0/projects").status_code == 503
        assert client.get("/api/v2.0/projects/skaha").status_code == 200
    assert harbor.app.count("GET", r"^/api/v2\.0/projects$") == 1
    assert harbor.app.rules == [FaultRule(path="^/api/v2.0/projects$", error_rate=1.0)]


def test_ping_health_and_systeminfo(reader: Harbor) -> None:
    with reader.api(None) as api:
        assert api.get("/ping").text == "Pong"
        assert api.get("/health").json()["status"] == "healthy"
        assert api.get("/systeminfo").json()["external_url"] == reader.url


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"images": [{"project": "nope", "repository": "x", "layers": [1]}]}, "unknown project"),
        ({"images": [{"project": "library", "repository": "X", "layers": [1]}]}, "repository"),
        ({"images": [{"project": "library", "repository": "x", "layers": [0]}]}, "layer size"),
        ({"projects": [{"name": "library", "members": ["ghost"]}]}, "unknown members"),
    ],
)
def test_invalid_configuration_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HarborConfig.model_validate(change)


def test_as_upstream_holds_every_image() -> None:
    upstream = site_config().as_upstream()
    assert upstream.upstream is None
    assert all(image.cached and not image.corrupt_layers for image in upstream.images)
    assert [u.name for u in upstream.users] == ["admin", "alice", "bob"]
