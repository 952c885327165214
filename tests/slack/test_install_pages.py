"""The install, success and failure pages in a real browser: Debian's Chromium, headless, driven by
Playwright. The Add to Slack button leads to Slack's authorize URL with paperbot's scopes and a state;
Slack's redirect back with that state installs once (success page), and again is refused (failure
page). A screenshot of each page is kept in ``artifacts/pages/`` (CI keeps that folder).

Chromium never leaves 127.0.0.1: the request the button makes to slack.com is answered by the test."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from adapters.slack.inbound import SlackInbound
from adapters.slack.oauth import SCOPES, oauth_flow
from adapters.slack.outbound import web_client
from adapters.web import WebServer
from bot.store.installations import RedisInstallations
from tests.redis_servers import free_port
from tests.slack.standin import SlackStandIn
from tests.world import World

CLIENT = ("1111.2222", "client-secret")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "pages"
# As the machine's own check runs it: no sandbox as root, and nothing that phones home.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
FLAGS += ["--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """Debian's Chromium (``apt-get install chromium``; CI installs it); skipped without it, except under
    REQUIRE_BROWSER=1 (CI), where a missing browser fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail("REQUIRE_BROWSER=1 but chromium is not installed")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs these")


@pytest.fixture
async def site() -> AsyncIterator[tuple[str, SlackStandIn]]:
    """paperbot's web port in multi-workspace mode, on a stand-in Slack, at a loopback address."""
    world = World()
    api = SlackStandIn(installs={"code-one": ("T1", "Lab <One> & Co")}, app_credentials=CLIENT)
    with api:
        client = web_client(None, api.api_url)
        installations = RedisInstallations(world.client, "c:")
        flow = oauth_flow(installations, client, client_id=CLIENT[0], client_secret=CLIENT[1], command="/papers")
        port = free_port()
        web = WebServer(port, host="127.0.0.1")
        web.mount(SlackInbound(client, signing_secret="s", oauth=flow).routes)
        serving = asyncio.create_task(web.run(world.core))
        while not web.connected:  # noqa: ASYNC110 - the server sets it as it starts listening
            await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}", api
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            await world.aclose()


async def test_the_pages_in_chromium_install_once_and_refuse_a_replay(site: tuple[str, SlackStandIn]) -> None:
    from playwright.async_api import Route, async_playwright

    base, api = site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    authorize_requests: list[str] = []

    async def slack_authorize(route: Route) -> None:  # what Slack would show; the test stands in for it
        authorize_requests.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<title>Slack</title><h1>Authorize</h1>")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), args=FLAGS)
        try:
            page = await browser.new_page()
            await page.route("https://slack.com/**", slack_authorize)
            await page.goto(f"{base}/slack/install")
            assert await page.title() == "Add paperbot to Slack"
            assert await page.get_by_role("heading", level=1).inner_text() == "Add paperbot to your Slack workspace"
            await page.screenshot(path=ARTIFACTS / "install.png", full_page=True)
            button = page.get_by_role("link", name="Add to Slack")
            await button.click()
            await page.wait_for_url("https://slack.com/**")
            [authorize] = authorize_requests
            query = parse_qs(urlsplit(authorize).query)
            assert authorize.startswith("https://slack.com/oauth/v2/authorize?")
            assert query["client_id"] == [CLIENT[0]]
            assert set(query["scope"][0].split(",")) == set(SCOPES)
            state = query["state"][0]

            # Slack sends the browser back with a code and the state; the state cookie goes with it.
            redirect = f"{base}/slack/oauth_redirect?{urlencode({'code': 'code-one', 'state': state})}"
            await page.goto(redirect)
            assert await page.title() == "paperbot is installed"
            heading = await page.get_by_role("heading", level=1).inner_text()
            assert heading == "paperbot is installed in Lab <One> & Co"  # the team's name shown as text, not markup
            assert "/invite @paperbot" in await page.locator("main").inner_text()
            await page.screenshot(path=ARTIFACTS / "success.png", full_page=True)

            await page.goto(redirect)  # the same state again: a replay
            assert await page.title() == "paperbot was not installed"
            assert "already used or has expired" in await page.locator("#reason").inner_text()
            await page.get_by_role("link", name="Start again").click()
            await page.wait_for_url(f"{base}/slack/install")
            await page.goto(redirect.replace("code-one", "code-two"))
            await page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
        finally:
            await browser.close()
    assert [m for m, *_ in api.calls if m == "oauth.v2.access"] == ["oauth.v2.access"]  # one install, one code used
    assert {p.name for p in ARTIFACTS.glob("*.png")} >= {"install.png", "success.png", "failure.png"}


async def test_the_install_pages_cannot_be_framed_or_load_anything_and_the_state_cookie_stays_on_site(
    site: tuple[str, SlackStandIn],
) -> None:
    url, _ = site
    async with httpx.AsyncClient() as http:
        install = await http.get(f"{url}/slack/install")
        failure = await http.get(f"{url}/slack/oauth_redirect?code=x&state=forged")
    for page in (install, failure):
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
    [cookie] = install.headers.get_list("Set-Cookie")
    assert "SameSite=Lax" in cookie
    assert "HttpOnly" in cookie
