"""The demo in a real headless browser (Debian's chromium, driven by Playwright): a whole request lifecycle.

As alice: ``/access``, search a resource, fill the modal, see the field error for a duration of 0, submit; as
bob: open the DM and approve; see the grant in the side panel and alice's DM; "Expire now"; see the revocation
and the DMs; open App Home. A screenshot of each step goes to the test's artifacts directory (and, with
``ACCESSBOT_DEMO_SCREENSHOTS=DIR``, to DIR too: that is how docs/*.png are made). No console errors, and every
payload the bot sent is valid Block Kit.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api
from playwright.sync_api import expect

from bot.demo.server import Demo
from tests.demo.conftest import assert_valid_block_kit

CHROMIUM = "/usr/bin/chromium"
# a loaded 2-core CI machine: every expectation waits up to 20 s for its condition (never a fixed sleep)
expect.set_options(timeout=20_000)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no browser: {CHROMIUM} is absent (apt-get install chromium)"),
]


@pytest.fixture
def page(demo: Demo, tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1500, "height": 900})
        page = context.new_page()
        page.console_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.console_errors.append(str(e)))
        page.goto(demo.url)
        yield page
        context.close()
        browser.close()


class Shots:
    def __init__(self, page: Any, directory: Path) -> None:
        self.page, self.directory, self.n = page, directory, 0
        directory.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> Path:
        self.n += 1
        path = self.directory / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        return path


def be(page: Any, user_id: str) -> None:
    page.locator(f".person[data-user={user_id}]").click()
    expect(page.locator(f".person.current[data-user={user_id}]")).to_be_visible()


def test_a_whole_lifecycle_in_the_browser(demo: Demo, page: Any, tmp_path: Path) -> None:
    shots = Shots(page, tmp_path / "screenshots")
    expect(page.locator(".person[data-user=UBOB]")).to_contain_text("on call: sre-primary")

    # alice asks for read access to the billing database
    be(page, "UALICE")
    page.fill("#composer-input", "/access")
    page.press("#composer-input", "Enter")
    modal = page.locator(".modal[data-callback-id=access_request]")
    expect(modal).to_be_visible()
    modal.locator("[data-block-id=resource] input").fill("bill")
    option = page.locator(".bk-option", has_text="billing · database · prod-postgres")
    expect(option).to_be_visible()  # the options came from the bot's block_suggestion answer
    shots.take("alice-searches-a-resource")
    option.click()
    permission = modal.locator("[data-block-id=permission] select")
    expect(permission).to_be_visible()  # the bot's views.update after the dispatched block_actions
    permission.select_option("read_only")
    modal.locator("[data-block-id=duration_hours] input").fill("0")
    modal.locator("[data-block-id=justification] textarea").fill("INC-4711: billing totals are off")
    page.click("#modal-submit")
    error = modal.locator("[data-block-id=duration_hours] .bk-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("0")
    shots.take("alice-duration-error")
    modal.locator("[data-block-id=duration_hours] input").fill("1.5")
    page.click("#modal-submit")
    expect(page.locator(".modal")).to_have_count(0)
    dm = page.locator("#messages")
    expect(dm).to_contain_text("waiting for approval")
    shots.take("alice-waits")

    # bob approves from his DM
    be(page, "UBOB")
    asked = dm.locator(".message", has_text="needs your decision").last
    expect(asked.locator("button[data-action-id=approve]")).to_be_visible()
    request = dm.locator(f".message[data-ts='{asked.get_attribute('data-ts')}']")
    expect(request).to_contain_text("INC-4711")
    shots.take("bob-is-asked")
    request.locator("button[data-action-id=approve]").click()
    expect(request).to_contain_text("Approved")  # the same message, updated in place by chat.update
    expect(request.locator("button[data-action-id=approve]")).to_have_count(0)
    expect(request.locator(".edited")).to_be_visible()
    log = page.locator("#log")
    expect(log.locator(".entry.connector", has_text="prod-postgres: grant")).to_be_visible()
    expect(page.locator("#requests tr[data-request] .state.active").first).to_be_visible()
    shots.take("bob-approved")

    be(page, "UALICE")
    expect(dm).to_contain_text("You have read_only on billing")
    shots.take("alice-has-access")

    # time passes: the expiry is due, the scheduler revokes
    page.click("#expire")
    expect(log.locator(".entry.connector", has_text="prod-postgres: revoke")).to_be_visible()
    expect(dm).to_contain_text("has ended")
    expect(page.locator(".state.expired").first).to_be_visible()
    shots.take("alice-access-expired")
    page.locator(".conversation", has_text="#accessbot-audit").click()
    expect(dm).to_contain_text("expired")
    shots.take("audit-channel")

    # App Home
    page.locator(".conversation", has_text="accessbot").first.click()
    page.click("#tab-home")
    home = page.locator("#home")
    expect(home.locator("button[data-action-id=new_request]")).to_be_visible()
    expect(home).to_contain_text("billing")
    shots.take("alice-app-home")

    assert page.console_errors == []  # type: ignore[attr-defined]
    assert assert_valid_block_kit(demo) > 10
    target = os.environ.get("ACCESSBOT_DEMO_SCREENSHOTS")
    if target:
        for shot in sorted(shots.directory.glob("*.png")):
            shutil.copy(shot, Path(target) / shot.name)


MRKDWN = [  # (description, Slack mrkdwn, the HTML the page renders)
    ("bold, italic, strike", "*a* _b_ ~c~", "<b>a</b> <i>b</i> <s>c</s>"),
    ("a bold mention", "*<@UALICE>* asks", '<b><span class="mention" data-user="UALICE">@Alice</span></b> asks'),
    ("code is not formatted", "`*x*` and ```a *b*```", "<code>*x*</code> and <pre>a *b*</pre>"),
    ("a labelled link", "<https://example.com/a?b=1&amp;c=2|the docs>",
     '<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">the docs</a>'),
    ("escaped user text stays text", "&lt;script&gt; &amp; *not bold*x", "&lt;script&gt; &amp; *not bold*x"),
    ("a date in the reader's zone", "<!date^1796169600^{date_num} {time}|fallback>",
     '<time class="date" title="fallback">2026-12-02 00:00 UTC</time>'),
    ("a quote", "> why\nnext", "<blockquote>why</blockquote>next"),
    ("emoji", ":warning: careful", "⚠️ careful"),
    ("a javascript: link is text", "<javascript:alert(1)|click>", "click"),
]


def test_mrkdwn_renders_as_slack_shows_it(page: Any) -> None:
    expect(page.locator(".person[data-user=UALICE]")).to_be_visible()
    rendered = page.evaluate(
        """async (cases) => {
            const { mrkdwn } = await import("/static/mrkdwn.js");
            const ctx = { userName: (id) => ({ UALICE: "Alice" })[id] || id, channelName: (id) => id, now: 0 };
            return cases.map((text) => mrkdwn(text, ctx));
        }""",
        [text for _, text, _ in MRKDWN],
    )
    for (description, _, expected), got in zip(MRKDWN, rendered, strict=True):
        assert got == expected, description
