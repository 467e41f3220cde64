"""The editor's and execution's pages in Chromium: create from a template, an invalid edit with
its field errors, execute, the offers table with live countdowns, select, the live session
view following server-sent events, and another user kept out. Screenshots for the README."""

import re
from pathlib import Path

from gateway_support import FullGateway
from playwright.sync_api import Browser, Page, expect


def _sign_in(page: Page, gateway: FullGateway, label: str) -> None:
    page.goto(f"{gateway.url}/worksteps")
    page.get_by_label(label).check()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{gateway.url}/worksteps")


def _new_from_template(page: Page, gateway: FullGateway, name: str) -> str:
    page.get_by_role("link", name="New workstep").click()
    section = page.get_by_role("region", name="From a template")
    section.get_by_label("Template").select_option("jupyterlab")
    section.get_by_label("Name (optional)").fill(name)
    section.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    return page.url


def test_edit_errors_offers_and_the_live_session(
    page: Page, full_gateway: FullGateway, screenshots: Path
) -> None:
    _sign_in(page, full_gateway, "Alice (astronomer)")
    page.goto(f"{full_gateway.url}/")
    expect(page.get_by_test_id("user-name")).to_have_text("alice")
    page.screenshot(path=screenshots / "home.png", full_page=True)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Worksteps").click()
    workstep = _new_from_template(page, full_gateway, "Look at the VLASS cube")

    compute = page.get_by_role("region", name="Compute")
    compute.get_by_label("Cores, at least").fill("16")
    compute.get_by_label("Cores, at most").fill("2")
    compute.get_by_role("button", name="Save compute").click()
    compute = page.get_by_role("region", name="Compute")
    cores = compute.get_by_label("Cores, at least")
    expect(cores).to_have_attribute("aria-invalid", "true")
    expect(cores).to_have_value("16")
    expect(compute.locator(".field-error")).to_contain_text("greater than max")
    expect(compute.get_by_role("alert")).to_contain_text("Nothing was saved")
    compute.get_by_role("link", name="compute.cores").click()  # the summary leads to the field
    expect(cores).to_be_focused()
    page.screenshot(path=screenshots / "editor-field-errors.png", full_page=True)
    page.goto(f"{full_gateway.url}/worksteps/new")
    page.screenshot(path=screenshots / "create-six-ways.png", full_page=True)

    page.goto(workstep)
    page.get_by_role("region", name="Data").get_by_label(re.compile("Add data")).fill(
        "demo:vlass-cube-0001.fits"
    )
    page.get_by_role("button", name="Add data").click()
    expect(page.get_by_role("region", name="Data")).to_contain_text("demo:vlass-cube-0001.fits")

    page.get_by_role("button", name="Execute").click()
    offers = page.get_by_role("region", name="Offers")
    expect(offers.get_by_role("row")).not_to_have_count(1)
    countdown = offers.locator("[data-expires]").first
    expect(countdown).to_have_text(re.compile(r"^\d+:\d\d$"))  # the script counts down
    sites = page.get_by_role("region", name="What each site answered")
    expect(sites.get_by_role("row", name=re.compile("site-c"))).to_contain_text("error")
    page.screenshot(path=screenshots / "offers.png", full_page=True)
    execution = page.url

    offers.get_by_role("button", name=re.compile(r"Select the offer of site-\w \(rank 1\)")).click()
    session = page.get_by_role("region", name=re.compile("Session at site-"))
    expect(session.locator("[data-phase]")).to_have_text(re.compile("ACCEPTED|WAITING|PREPARING"))
    expect(session.locator("progress")).to_have_count(4)

    # cancelled from another window: this page hears it on its event stream and reloads
    other = page.context.new_page()
    other.goto(execution)
    other.get_by_role("button", name="Cancel session").click()
    expect(page.get_by_role("region", name=re.compile("Session at"))).to_contain_text(
        "CANCELLED", timeout=15_000
    )
    expect(page.get_by_role("button", name="Cancel session")).to_have_count(0)


def test_another_user_cannot_reach_it(browser: Browser, full_gateway: FullGateway) -> None:
    alice = browser.new_context()
    bob = browser.new_context()
    try:
        page = alice.new_page()
        _sign_in(page, full_gateway, "Alice (astronomer)")
        workstep = _new_from_template(page, full_gateway, "Alice's only")
        page.get_by_role("button", name="Execute").click()
        expect(page.get_by_role("region", name="Offers")).to_be_visible()
        execution = page.url
        intruder = bob.new_page()
        _sign_in(intruder, full_gateway, "Bob (astronomer)")
        expect(intruder.get_by_text("Alice's only")).to_have_count(0)
        for address in (workstep, execution):
            answer = intruder.goto(address)
            assert answer is not None and answer.status == 404
            expect(intruder.get_by_role("heading", level=1)).to_have_text("Not found")
    finally:
        alice.close()
        bob.close()
