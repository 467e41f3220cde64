"""The Skaha emulator over real HTTP: the wire protocol, real processes, expiry and faults."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopback_support import Loopback
from worksteps.core.serving import ServedApp, serve_in_thread
from worksteps.emulators.faults import FaultInjector
from worksteps.emulators.skaha import SkahaConfig, create_app

TERMINAL = "images.canfar.net/skaha/terminal:1.1.2"
CARTA = "images.canfar.net/skaha/carta:4.1"
DESKTOP = "images.canfar.net/skaha/desktop:1.0"


class Site:
    """A served emulator and a client per user."""

    def __init__(self, served: ServedApp, app: FaultInjector, config: SkahaConfig):
        self.served = served
        self.app = app
        self.config = config
        self.url = served.url
        self._clients: list[httpx.Client] = []

    def client(self, token: str | None = "alice") -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url + "/skaha/v1", headers=headers, timeout=10)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def make_site(tmp_path: Path, loopback: Loopback) -> Iterator[Callable[..., Site]]:
    sites: list[Site] = []

    def make(**overrides: Any) -> Site:
        settings: dict[str, Any] = {
            "data_root": tmp_path / f"skaha{len(sites)}",
            "start_latency": 0.05,
            "terminating_seconds": 0.3,
            "stop_grace": 2.0,
        }
        settings.update(overrides)
        config = SkahaConfig(**settings)
        app = create_app(config)
        sites.append(Site(loopback(app), app, config))
        return sites[-1]

    yield make
    for site in sites:  # before ``loopback`` stops the servers
        site.close()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


def create(client: httpx.Client, **params: Any) -> str:
    response = client.post("/session", params=params)
    assert response.status_code == 200, response.text
    session_id = response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert session_id.endswith("\n")
    assert len(session_id.strip()) == 8
    return session_id.strip()


def wait_for(client: httpx.Client, session_id: str, *statuses: str, limit: float = 20) -> dict:
    deadline = time.monotonic() + limit
    while True:
        doc: dict = client.get(f"/session/{session_id}").json()
        if doc["status"] in statuses:
            return doc
        assert time.monotonic() < deadline, f"still {doc['status']}, wanted {statuses}"
        time.sleep(0.05)


def write_script(site: Site, user: str, name: str, body: str) -> None:
    home = site.config.user_home(user)
    home.mkdir(parents=True, exist_ok=True)
    (home / name).write_text(textwrap.dedent(body))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def pids_written(pid_file: Path, limit: float = 10) -> list[int]:
    """The process ids a session's script writes to ``pid_file``, once it has written them."""
    deadline = time.monotonic() + limit
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, f"{pid_file} still empty"
        time.sleep(0.05)
    return [int(pid) for pid in pid_file.read_text().split()]


def test_session_lifecycle_create_list_get_delete(make_site: Callable[..., Site]) -> None:
    site = make_site(start_latency=1.5)
    alice = site.client()
    session_id = create(alice, name="My-Viewer", image=CARTA, type="carta", cores=2, ram=4)

    pending = alice.get(f"/session/{session_id}").json()
    assert pending["status"] == "Pending"
    assert "startTime" not in pending and "expiryTime" not in pending
    assert pending["name"] == "my-viewer"
    assert pending["connectURL"] == f"{site.url}/session/carta/{session_id}/"
    headless = create(alice, name="batch", image=TERMINAL, cmd="sleep", args="5")

    running = wait_for(alice, session_id, "Running")
    assert running["requestedCPUCores"] == "2" and running["requestedRAM"] == "4G"
    assert running["isFixedResources"] is True
    assert running["startTime"].endswith("Z") and running["expiryTime"] > running["startTime"]

    assert {s["id"] for s in alice.get("/session").json()} == {session_id, headless}
    assert [s["id"] for s in alice.get("/session", params={"type": "carta"}).json()] == [session_id]
    wait_for(alice, headless, "Running")
    by_status = alice.get("/session", params={"status": "running"}).json()
    assert {s["id"] for s in by_status} == {session_id, headless}

    assert alice.delete(f"/session/{session_id}").status_code == 200
    assert alice.get(f"/session/{session_id}").json()["status"] == "Terminating"
    time.sleep(0.5)
    gone = alice.get(f"/session/{session_id}")
    assert gone.status_code == 404
    assert gone.text == f"session {session_id} not found\n"


def test_create_reads_the_form_body_and_defaults_to_flexible_headless(site: Site) -> None:
    alice = site.client()
    response = alice.post(
        "/session",
        content="name=formed&image=" + TERMINAL + "&cmd=true",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    doc = wait_for(alice, response.text.strip(), "Completed")
    assert doc["type"] == "headless"
    assert doc["connectURL"] == ""
    assert doc["isFixedResources"] is False
    assert doc["requestedCPUCores"] == str(site.config.default_request_cores)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "a"}, "Missing parameter 'image'"),
        ({"name": "a", "image": "docker.io/x/y:1"}, "session image 'docker.io/x/y:1' must"),
        ({"name": "a", "image": CARTA, "type": "movie"}, "Invalid session type: movie"),
        (
            {"name": "a", "image": CARTA, "type": "carta", "cores": 99},
            "Invalid value for 'cores': 99",
        ),
        (
            {"name": "a", "image": CARTA, "type": "carta", "ram": "lots"},
            "Invalid value for 'ram': lots",
        ),
        ({"image": CARTA, "type": "carta"}, "Missing parameter 'name'"),
        ({"name": "no_way", "image": CARTA}, "name can only contain alpha-numeric chars and '-'"),
        ({"name": "a", "image": CARTA, "gpus": 2}, "Invalid value for 'gpus': 2"),
    ],
)
def test_create_refusals_carry_skahas_messages(
    site: Site, params: dict[str, Any], message: str
) -> None:
    response = site.client().post("/session", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(message)
    if "docker.io" in str(params):
        assert response.text == (
            "session image 'docker.io/x/y:1' must come from one of [images.canfar.net]\n"
        )


def test_quota_counts_active_interactive_sessions_per_user(make_site: Callable[..., Site]) -> None:
    site = make_site(max_user_sessions=2)
    alice = site.client()
    first = create(alice, name="one", image=CARTA, type="carta")
    create(alice, name="two", image=DESKTOP, type="desktop")
    refused = alice.post("/session", params={"name": "three", "image": CARTA, "type": "carta"})
    assert refused.status_code == 400
    assert refused.text == "User alice has reached the maximum of 2 active sessions.\n"
    create(alice, name="batch", image=TERMINAL, cmd="true")  # headless is not counted
    create(site.client("bob"), name="bobs", image=CARTA, type="carta")  # per user
    alice.delete(f"/session/{first}")
    create(alice, name="three", image=CARTA, type="carta")


def test_headless_runs_in_its_working_directory_with_env_and_captured_output(site: Site) -> None:
    write_script(
        site,
        "alice",
        "job.py",
        """
        import os, sys
        print("args", sys.argv[1:])
        print("greeting", os.environ.get("GREETING"), os.environ.get("DROPPED"))
        print("to stderr", file=sys.stderr)
        open("result.txt", "w").write("done")
        """,
    )
    alice = site.client()
    session_id = create(
        alice,
        name="job",
        image=TERMINAL,
        cmd="python3",
        args="arc/home/alice/job.py first second",
        env=["GREETING=hello", "DROPPED=a=b"],
    )
    wait_for(alice, session_id, "Completed")
    logs = alice.get(f"/session/{session_id}", params={"view": "logs"})
    assert logs.headers["content-type"].startswith("text/plain")
    assert "args ['first', 'second']" in logs.text
    assert "greeting hello None" in logs.text  # Skaha drops env values that contain '='
    assert "to stderr" in logs.text
    assert (site.config.session_dir(session_id) / "result.txt").read_text() == "done"


def test_echo_logs(site: Site) -> None:
    alice = site.client()
    session_id = create(alice, name="echo", image=TERMINAL, cmd="echo", args="hello world")
    wait_for(alice, session_id, "Completed")
    assert alice.get(f"/session/{session_id}", params={"view": "logs"}).text == "hello world\n"


def test_failing_and_unstartable_commands_fail(site: Site) -> None:
    alice = site.client()
    failing = create(alice, name="fails", image=TERMINAL, cmd="false")
    missing = create(alice, name="missing", image=TERMINAL, cmd="no-such-program-here")
    wait_for(alice, failing, "Failed")
    wait_for(alice, missing, "Failed")
    events = alice.get(f"/session/{failing}", params={"view": "events"}).text
    assert "BackoffLimitExceeded" in events and "exit code 1" in events
    events = alice.get(f"/session/{missing}", params={"view": "events"}).text
    assert 'exec: "no-such-program-here"' in events


def test_events_table_shows_the_image_pull(make_site: Callable[..., Site]) -> None:
    site = make_site(start_latency=1.5)
    alice = site.client()
    session_id = create(alice, name="viewer", image=CARTA, type="carta")
    lines = alice.get(f"/session/{session_id}", params={"view": "events"}).text.splitlines()
    assert lines[0].split() == ["TYPE", "REASON", "MESSAGE", "FIRST-TIME", "LAST-TIME"]
    assert lines[-1].split()[:2] == ["Normal", "Pulling"] and CARTA in lines[-1]
    wait_for(alice, session_id, "Running")
    text = alice.get(f"/session/{session_id}", params={"view": "events"}).text
    assert "Pulled" in text and "Started" in text
    assert alice.get("/session/nothere", params={"view": "events"}).status_code == 404


def test_expiry_ends_the_session_and_kills_its_process(make_site: Callable[..., Site]) -> None:
    site = make_site(session_lifetime=1.0)
    write_script(
        site,
        "alice",
        "sleeper.py",
        "import os, time\nopen('pid','w').write(str(os.getpid()))\ntime.sleep(60)\n",
    )
    alice = site.client()
    session_id = create(
        alice, name="sleeper", image=TERMINAL, cmd="python3", args="arc/home/alice/sleeper.py"
    )
    wait_for(alice, session_id, "Running")
    (pid,) = pids_written(site.config.session_dir(session_id) / "pid")
    assert alive(pid)
    doc = wait_for(alice, session_id, "Failed", limit=10)
    assert (
        alice.get(f"/session/{session_id}", params={"view": "events"}).text.count(
            "DeadlineExceeded"
        )
        == 1
    )
    assert doc["expiryTime"] <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert not alive(pid)


def test_renew_extends_the_expiry_and_refuses_what_it_cannot_renew(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(session_lifetime=3.0)
    alice = site.client()
    session_id = create(alice, name="viewer", image=CARTA, type="carta")
    before = wait_for(alice, session_id, "Running")["expiryTime"]
    time.sleep(1.1)
    assert alice.post(f"/session/{session_id}", params={"action": "renew"}).status_code == 200
    after = alice.get(f"/session/{session_id}").json()["expiryTime"]
    assert after > before
    time.sleep(2.2)  # past the first expiry, not past the renewed one
    assert alice.get(f"/session/{session_id}").json()["status"] == "Running"

    unknown = alice.post("/session/nothere", params={"action": "renew"})
    assert (unknown.status_code, unknown.text) == (
        400,
        "No active job for user alice with session nothere\n",
    )
    no_action = alice.post(f"/session/{session_id}")
    assert (no_action.status_code, no_action.text) == (400, "Cannot modify an existing session\n")
    bad = alice.post(f"/session/{session_id}", params={"action": "pause"})
    assert (bad.status_code, bad.text) == (400, "unrecognized action\n")


def test_delete_kills_the_whole_process_tree(site: Site) -> None:
    write_script(
        site,
        "alice",
        "parent.py",
        """
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        open("pids", "w").write(f"{os.getpid()} {child.pid}")
        time.sleep(60)
        """,
    )
    alice = site.client()
    session_id = create(
        alice, name="tree", image=TERMINAL, cmd="python3", args="arc/home/alice/parent.py"
    )
    pids = pids_written(site.config.session_dir(session_id) / "pids")
    assert all(alive(p) for p in pids)
    assert alice.delete(f"/session/{session_id}").status_code == 200
    assert not any(alive(p) for p in pids)


def test_app_shutdown_kills_every_session_process(tmp_path: Path) -> None:
    config = SkahaConfig(data_root=tmp_path, start_latency=0.0)
    (tmp_path / "home" / "alice").mkdir(parents=True)
    (tmp_path / "home" / "alice" / "s.py").write_text(
        "import os, time\nopen('pid','w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    with serve_in_thread(create_app(config)) as served:
        with httpx.Client(
            base_url=served.url + "/skaha/v1", headers={"Authorization": "Bearer alice"}
        ) as alice:
            session_id = create(
                alice, name="s", image=TERMINAL, cmd="python3", args="arc/home/alice/s.py"
            )
            wait_for(alice, session_id, "Running")
        (pid,) = pids_written(config.session_dir(session_id) / "pid")
        assert alive(pid)
    assert not alive(pid)


def test_authentication_and_ownership(make_site: Callable[..., Site]) -> None:
    site = make_site(tokens={"secret-token": "carol"}, unknown_tokens="reject")
    assert site.client(None).get("/session").status_code == 401
    refused = site.client("who-knows").get("/session")
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
    carol = site.client("secret-token")
    session_id = create(carol, name="mine", image=CARTA, type="carta")
    assert carol.get(f"/session/{session_id}").json()["userid"] == "carol"

    open_site = make_site()
    alice, bob = open_site.client("alice"), open_site.client("bob")
    session_id = create(alice, name="mine", image=CARTA, type="carta")
    assert bob.get(f"/session/{session_id}").status_code == 404
    assert bob.delete(f"/session/{session_id}").status_code == 404
    assert bob.get("/session").json() == []
    (public,) = bob.get("/session", params={"view": "all"}).json()
    assert (public["userid"], public["type"]) == ("alice", "carta")
    assert set(public) <= {"userid", "type", "status", "startTime"}
    long_token = open_site.client("x" * 40 + ".jwt.part")
    assert long_token.get("/session").status_code == 200


def test_context_images_repository_stats_and_vosi(site: Site) -> None:
    alice = site.client()
    context = alice.get("/context").json()
    assert context["cores"]["options"] == list(range(1, site.config.max_cores + 1))
    assert context["memoryGB"]["defaultLimit"] == site.config.default_limit_ram_gb
    assert context["gpus"] == {"options": [0]}
    carta_images = alice.get("/image", params={"type": "carta"}).json()
    assert carta_images == [{"id": CARTA, "types": ["carta"], "digest": ""}]
    assert alice.get("/repository").json() == ["images.canfar.net"]
    session_id = create(alice, name="viewer", image=CARTA, type="carta", cores=4, ram=8)
    wait_for(alice, session_id, "Running")
    stats = alice.get("/session", params={"view": "stats"}).json()
    assert stats["cores"]["requestedCPUCores"] == 4.0
    assert stats["instances"]["session"] == 1
    availability = httpx.get(site.url + "/skaha/availability")
    assert "<vosi:available>true</vosi:available>" in availability.text
    capabilities = httpx.get(site.url + "/skaha/capabilities").text
    assert f"{site.url}/skaha/v1/session</accessURL>" in capabilities


def test_session_pages_say_they_are_emulated(site: Site) -> None:
    alice = site.client()
    carta = create(alice, name="viewer", image=CARTA, type="carta")
    desktop = create(alice, name="desk", image=DESKTOP, type="desktop")
    carta_url = wait_for(alice, carta, "Running")["connectURL"]
    desktop_url = wait_for(alice, desktop, "Running")["connectURL"]
    assert desktop_url == (
        f"{site.url}/session/desktop/{desktop}/?password={desktop}&path=session/desktop/{desktop}/"
    )
    page = httpx.get(carta_url)
    assert page.status_code == 200 and "This session is emulated" in page.text
    assert httpx.get(desktop_url).status_code == 200
    assert httpx.get(f"{site.url}/session/desktop/{desktop}/").status_code == 401
    assert httpx.get(f"{site.url}/session/carta/{desktop}/").status_code == 404
    alice.delete(f"/session/{carta}")
    assert httpx.get(carta_url).status_code in {404, 503}


def test_injected_faults_are_visible_and_counted(site: Site) -> None:
    alice = site.client()
    rules = [{"method": "GET", "path": "^/skaha/v1/session$", "error_rate": 1.0, "status": 503}]
    assert httpx.put(site.url + "/_emulator/faults", json=rules).status_code == 200
    assert alice.get("/session").status_code == 503
    assert alice.get("/context").status_code == 200
    assert site.app.count("GET", r"^/skaha/v1/session$") == 1
    httpx.put(site.url + "/_emulator/faults", json=[])
    assert alice.get("/session").status_code == 200


def test_unknown_routes_answer_in_text(site: Site) -> None:
    response = site.client().get("/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Not Found\n"
