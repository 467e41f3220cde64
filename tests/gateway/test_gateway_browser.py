"""The gateway in a real browser (Debian's Chromium, headless, through Playwright).

Sign-in through the issuer's page, sign-out, refused cookies, CSRF on real forms, keyboard
use and a narrow window. The screenshots land in docs/screenshots/ for the README.
"""

import re
import time
from pathlib import Path

from gateway_support import SECRET, Gateway
from playwright.sync_api import Browser, BrowserContext, Page, expect

from worksteps.gateway.web.signing import CookieSigner

COOKIE = "worksteps_session"


def _at_issuer(page: Page, gateway: Gateway) -> None:
    expect(page).to_have_url(re.compile(re.escape(f"{gateway.issuer.issuer}/authorize?")))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Sign in to Worksteps Science Gateway"
    )


def _sign_in(page: Page, gateway: Gateway, label: str = "Alice (astronomer)") -> None:
    page.goto(f"{gateway.url}/")
    _at_issuer(page, gateway)
    page.get_by_label(label).check()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{gateway.url}/")


def _session_cookie(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == COOKIE), None)


def test_sign_in_as_alice_shows_her_name(
    page: Page, context: BrowserContext, plain_gateway: Gateway, screenshots: Path
) -> None:
    page.goto(f"{plain_gateway.url}/")
    _at_issuer(page, plain_gateway)
    for label in ("Alice (astronomer)", "Bob (astronomer)", "Site operator"):
        expect(page.get_by_label(label)).to_be_visible()
    page.screenshot(path=screenshots / "sign-in.png", full_page=True)
    page.get_by_role("button", name="Sign in").click()  # alice is chosen first
    expect(page).to_have_url(f"{plain_gateway.url}/")
    expect(page.get_by_test_id("user-name")).to_have_text("alice")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, alice")
    expect(page.get_by_role("main")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts


def test_sign_out(page: Page, plain_gateway: Gateway, screenshots: Path) -> None:
    _sign_in(page, plain_gateway, "Bob (astronomer)")
    expect(page.get_by_test_id("user-name")).to_have_text("bob")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{plain_gateway.url}/signed-out")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
    expect(page.get_by_test_id("user-name")).to_have_count(0)
    page.screenshot(path=screenshots / "signed-out.png", full_page=True)
    page.goto(f"{plain_gateway.url}/")
    _at_issuer(page, plain_gateway)


def test_forged_and_expired_cookies_lead_back_to_sign_in(
    page: Page, context: BrowserContext, gateway: Gateway
) -> None:
    alice = gateway.issuer.mint("alice")
    expired = gateway.issuer.mint("alice", issued_at=time.time() - 7200, lifetime=600)
    cookies = {
        "forged signature": CookieSigner("not-the-secret" * 3).dumps(
            "session", {"sid": "s", "tok": alice}
        ),
        "garbage": "eyJzaWQiOiJzIn0.bm90LWEtbWFj",
        "expired token": CookieSigner(SECRET).dumps("session", {"sid": "s", "tok": expired}),
    }
    for kind, value in cookies.items():
        context.clear_cookies()
        context.add_cookies([{"name": COOKIE, "value": value, "url": gateway.url}])
        page.goto(f"{gateway.url}/notes")
        _at_issuer(page, gateway)
        assert _session_cookie(context) is None, kind  # the bad cookie was dropped
    # and the sign-in that follows comes back to the page first asked for
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{gateway.url}/notes")
    expect(page.get_by_test_id("user-name")).to_have_text("alice")


def test_a_form_without_the_csrf_token_is_refused(page: Page, gateway: Gateway) -> None:
    _sign_in(page, gateway)
    page.goto(f"{gateway.url}/notes")
    # a forged form, as another site would post it: no token
    page.evaluate(
        """() => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = "/signout";
            document.body.append(form);
            form.submit();
        }"""
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Forbidden")
    expect(page.get_by_role("alert")).to_contain_text("CSRF token")
    # the page's own form with its token removed is refused just the same, and nothing is kept
    page.goto(f"{gateway.url}/notes")
    page.locator('#main input[name="csrf_token"]').evaluate("el => el.remove()")
    page.get_by_label("Note").fill("smuggled")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forbidden")
    # the intact form works, and the user was never signed out
    page.goto(f"{gateway.url}/notes")
    page.get_by_label("Note").fill("honest")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#notes")).to_contain_text("alice: honest")
    expect(page.locator("#notes")).not_to_contain_text("smuggled")
    expect(page.get_by_test_id("user-name")).to_have_text("alice")


def test_the_api_helper_sends_the_csrf_header(page: Page, gateway: Gateway) -> None:
    _sign_in(page, gateway)
    page.wait_for_function("window.worksteps !== undefined", timeout=5000)
    helper = page.evaluate("worksteps.api('/api/probe', {method: 'POST'})")
    assert helper["status"] == 200
    assert helper["body"] == {"subject": "alice"}
    raw = page.evaluate("fetch('/api/probe', {method: 'POST'}).then(r => r.status)")
    assert raw == 403


def _focused(page: Page) -> str:
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.id || '') + '|' + (e.textContent || '').trim(); }"
        )
    )


def test_sign_in_by_keyboard(page: Page, gateway: Gateway) -> None:
    page.goto(f"{gateway.url}/")
    _at_issuer(page, gateway)
    page.keyboard.press("Tab")
    assert _focused(page).startswith("user-alice|")
    page.keyboard.press("ArrowDown")
    assert _focused(page).startswith("user-bob|")
    expect(page.get_by_label("Bob (astronomer)")).to_be_checked()
    page.keyboard.press("Tab")
    assert _focused(page) == "|Sign in"
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{gateway.url}/")
    expect(page.get_by_test_id("user-name")).to_have_text("bob")
    # on the gateway the first Tab reaches the skip link, which moves focus to the content
    page.keyboard.press("Tab")
    assert _focused(page) == "|Skip to main content"
    expect(page.get_by_role("link", name="Skip to main content")).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert _focused(page).startswith("main|")


def test_a_narrow_window(browser: Browser, full_gateway: Gateway, screenshots: Path) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{full_gateway.url}/")
        _at_issuer(page, full_gateway)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("user-name")).to_have_text("alice")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
        expect(page.get_by_role("link", name="Worksteps").first).to_be_in_viewport()
        page.screenshot(path=screenshots / "home-narrow.png", full_page=True)
        page.goto(f"{full_gateway.url}/worksteps/new")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
