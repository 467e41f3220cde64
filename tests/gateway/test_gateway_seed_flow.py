"""The seed flow in Chromium, end to end on loopback: sign in, create a workstep from the
JupyterLab template, add data, execute, select the best offer, watch the four preparation bars
fed by server-sent events, open the real JupyterLab session.

One emulated site (a broker with Rucio, Cavern, Harbor and Skaha emulators; Skaha starts a real
JupyterLab) behind the gateway's own editor and execution service.
"""

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from gateway_support import FullGateway, SignInIssuer, serve_full_gateway
from playwright.sync_api import Page, expect

# Records every value a progress bar is given, across page reloads.
BAR_SPY = """
(() => {
  const value = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
  Object.defineProperty(HTMLProgressElement.prototype, "value", {
    configurable: true,
    get() { return value.get.call(this); },
    set(v) { value.set.call(this, v); if (window.bar) window.bar(this.dataset.step, v); },
  });
})();
"""

MOVING = """group => {
  const bar = document.querySelector(`progress[data-step="${group}"]`);
  return bar !== null && bar.value > 0 && bar.value < 100;
}"""


@pytest.fixture(scope="module")
def seed(
    signin_issuer: SignInIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FullGateway]:
    from worksteps.federation.config import DEFAULT_SITES, FederationConfig, FileSpec
    from worksteps.federation.launch import start_federation

    data = tmp_path_factory.mktemp("seed")
    config = FederationConfig(
        data_dir=data / "federation",
        # copies into user storage at 2 MB/s: the bars are seen moving for a few seconds
        sites=[DEFAULT_SITES[0].model_copy(update={"storage_bandwidth": 2e6})],
        files=[FileSpec(name="vlass-cube-0001.fits", size=6 << 20, sites=["site-a"])],
        datasets=[],
    )
    with start_federation(config) as federation, ExitStack() as stack:
        brokers = {"site-a": federation.site("site-a").url}
        yield serve_full_gateway(stack, signin_issuer, "seed", brokers, data)


def test_from_sign_in_to_an_open_jupyterlab(
    page: Page, seed: FullGateway, screenshots: Path
) -> None:
    bars: dict[str, float] = {}
    page.expose_function("bar", lambda step, value: bars.__setitem__(step, max(value, 0)))
    page.add_init_script(BAR_SPY)

    page.goto(f"{seed.url}/")
    page.get_by_label("Alice (astronomer)").check()
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Worksteps").click()
    page.get_by_role("link", name="New workstep").click()
    section = page.get_by_role("region", name="From a template")
    section.get_by_label("Template").select_option("jupyterlab")
    section.get_by_label("Name (optional)").fill("Look at the VLASS cube")
    section.get_by_role("button", name="Create").click()
    page.get_by_label(re.compile("Add data")).fill("demo:vlass-cube-0001.fits")
    page.get_by_role("button", name="Add data").click()
    expect(page.get_by_role("region", name="Data")).to_contain_text("vlass-cube-0001.fits")

    page.get_by_role("button", name="Execute").click()
    offers = page.get_by_role("region", name="Offers")
    expect(offers.get_by_role("row").nth(1)).to_contain_text("data local")
    offers.get_by_role("button", name=re.compile(r"rank 1\)")).click()
    page.wait_for_function(MOVING, arg="storage", timeout=30_000)
    page.screenshot(path=screenshots / "session-preparing.png", full_page=True)

    opened = page.get_by_role("link", name="Open session")
    expect(opened).to_be_visible(timeout=90_000)  # the page reloads itself when ready
    expect(page.locator("[data-phase]")).to_have_text(re.compile("AVAILABLE|RUNNING"))
    page.screenshot(path=screenshots / "session-ready.png", full_page=True)
    for group in ("data", "storage", "image"):
        assert bars.get(group) == 100, bars
    assert "session" in bars, bars

    link = opened.get_attribute("href")
    assert link
    lab = httpx.get(link, follow_redirects=True, timeout=30)
    assert lab.status_code == 200
    assert "JupyterLab" in lab.text or "jupyter" in lab.text.lower()

    page.get_by_role("button", name="Cancel session").click()
    expect(page.locator("[data-phase]")).to_have_text(
        re.compile("CANCELLED|RELEASING|COMPLETED"), timeout=30_000
    )

    # the history: the ended session re-created from its provenance record
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sessions").click()
    row = page.get_by_role("row", name=re.compile("Look at the VLASS cube"))
    expect(row).to_contain_text("CANCELLED", timeout=30_000)
    row.get_by_role("button", name="Create from provenance").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert re.search(r"/worksteps/[0-9a-f-]{36}$", page.url), page.url
    expect(page.locator(".meta")).to_contain_text("created provenance")
    expect(page.get_by_role("region", name="Data")).to_contain_text("vlass-cube-0001.fits")
