"""The seed flow in Chromium, end to end on loopback: sign in, create a workstep from the
JupyterLab template, add data, execute, select the best offer, watch the four preparation bars
fed by server-sent events, open the real JupyterLab session.

The federation exactly as ``worksteps up`` ships it: its sign-in, its gateway (with the editor
and the execution service inside), three sites whose brokers drive Rucio, Cavern, Harbor and
Skaha emulators (Skaha starts a real JupyterLab). The screenshots are the README's.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from worksteps.federation import Federation

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
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    from worksteps.federation.config import DEFAULT_FILES, DEFAULT_SITES, FederationConfig
    from worksteps.federation.launch import start_federation

    site_a, *others = DEFAULT_SITES
    config = FederationConfig(
        data_dir=tmp_path_factory.mktemp("seed"),
        port=0,
        # copies into user storage at 2 MB/s: the bars are seen moving for a few seconds
        sites=[site_a.model_copy(update={"storage_bandwidth": 2e6}), *others],
        files=[
            f.model_copy(update={"size": 6 << 20}) if f.name.startswith("vlass") else f
            for f in DEFAULT_FILES
        ],
    )
    with start_federation(config) as federation:
        yield federation


@pytest.fixture(scope="module")
def short_offers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    """One site whose offers hold for two seconds only."""
    from worksteps.federation.config import DEFAULT_SITES, FederationConfig
    from worksteps.federation.launch import start_federation

    config = FederationConfig(
        data_dir=tmp_path_factory.mktemp("short"),
        port=0,
        sites=[DEFAULT_SITES[1]],
        files=[],
        datasets=[],
        offer_ttl="PT2S",
    )
    with start_federation(config) as federation:
        yield federation


def test_from_sign_in_to_an_open_jupyterlab(
    page: Page, seed: Federation, screenshots: Path
) -> None:
    bars: dict[str, float] = {}
    page.expose_function("bar", lambda step, value: bars.__setitem__(step, max(value, 0)))
    page.add_init_script(BAR_SPY)

    page.goto(f"{seed.gateway}/")
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
    expect(offers.get_by_role("row").nth(1)).to_contain_text("site-a")  # the cube is there
    sites = page.get_by_role("region", name="What each site answered")
    for name in ("site-a", "site-b", "site-c"):
        expect(sites.get_by_role("row", name=re.compile(name))).to_contain_text("offers")
    page.screenshot(path=screenshots / "offers-three-sites.png", full_page=True)
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


def test_an_expired_offer_cannot_be_selected(page: Page, short_offers: Federation) -> None:
    page.goto(f"{short_offers.gateway}/")
    page.get_by_label("Bob (astronomer)").check()
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Worksteps").click()
    page.get_by_role("link", name="New workstep").click()
    section = page.get_by_role("region", name="From a template")
    section.get_by_label("Template").select_option("python-script")
    section.get_by_role("button", name="Create").click()
    page.get_by_role("button", name="Execute").click()
    offers = page.get_by_role("region", name="Offers")
    expect(offers.get_by_role("row").nth(1)).to_contain_text("site-b")
    select = offers.get_by_role("button", name=re.compile(r"rank 1\)"))
    expect(select).to_be_disabled(timeout=5000)  # the countdown reached zero
    # a stale page (or a script) may still send the form: the service refuses it
    select.evaluate("button => { button.disabled = false; }")
    select.click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("expired", re.I))
    expect(page.get_by_role("link", name="Open session")).to_have_count(0)
