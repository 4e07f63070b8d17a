"""The demo in a real headless browser (Debian's chromium, driven by Playwright): a whole request lifecycle.

As alice: ``/access``, type in the resource picker (a ``multi_external_select``: options grouped by integration
through the bot's options-load answer), pick "billing" (a chip; the bot redraws the permission select), choose
the permission (the bot redraws the hours field), see the field error for a duration of 0, submit; as bob: open
the DM (the justification quoted as ``rich_text``) and approve; see the grant in the side panel, in the thread
under the request's post in #access-approvals, and in alice's DM; "Expire now"; see the revocation, the thread
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
from slack_sdk.models.blocks import Block

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
    expect(modal.locator("[data-block-id=grantees]")).to_be_visible()  # filled in for alice's flows
    modal.locator("[data-block-id=resource] input").fill("bill")
    group = page.locator(".bk-group[aria-label=prod-postgres]")  # the bot's block_suggestion answer, grouped
    option = group.locator(".bk-option", has_text="billing · database")
    expect(option).to_be_visible()
    expect(group.locator(".bk-option", has_text="billing-debug — bundle")).to_be_visible()
    expect(page.locator(".bk-option", has_text="ledger")).to_have_count(0)  # the answer for "bill", not for ""
    shots.take("alice-searches-a-resource")
    option.click()
    expect(modal.locator("[data-block-id=resource] .bk-chip")).to_have_text(["billing · database×"])
    permission = modal.locator("[data-block-id=permission] select")
    expect(permission).to_be_visible()  # the bot's views.update after the dispatched block_actions
    expect(modal.locator("[data-block-id=duration_hours] .bk-optional")).to_be_visible()  # read_write asks none
    permission.select_option("read_only")
    expect(modal.locator("[data-block-id=duration_hours] .bk-optional")).to_have_count(0)  # redrawn: required
    modal.locator("[data-block-id=resource] input").fill("bill")
    expect(page.locator(".bk-option", has_text="billing-debug — bundle")).to_be_visible()
    expect(page.locator(".bk-option", has_text="billing · database")).to_have_count(0)  # picked already
    modal.locator("[data-block-id=resource] input").fill("")
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
    expect(request.locator("blockquote.rt-quote")).to_have_text("INC-4711: billing totals are off")
    shots.take("bob-is-asked")
    request.locator("button[data-action-id=approve]").click()
    expect(request).to_contain_text("Approved")  # the same message, updated in place by chat.update
    expect(request.locator("button[data-action-id=approve]")).to_have_count(0)
    expect(request.locator(".edited")).to_be_visible()
    log = page.locator("#log")
    expect(log.locator(".entry.connector", has_text="prod-postgres: grant")).to_be_visible()
    expect(page.locator("#requests tr[data-request] .state.active").first).to_be_visible()
    shots.take("bob-approved")
    page.locator(".conversation", has_text="#access-approvals").click()
    posted = dm.locator(".message:not(.reply)", has_text="Access request #2")
    expect(posted).to_contain_text("Approved")
    thread = page.locator(f".thread[data-thread-ts='{posted.get_attribute('data-ts')}']")
    expect(thread.locator(".message.reply", has_text="Granted read_only on `billing`")).to_have_count(0)
    expect(thread.locator(".message.reply", has_text="Granted read_only on billing")).to_be_visible()
    expect(thread.locator(".thread-head")).to_have_text("1 reply")
    shots.take("approvals-channel-thread")

    be(page, "UALICE")
    expect(dm).to_contain_text("You have read_only on billing")
    shots.take("alice-has-access")

    # time passes: the expiry is due, the scheduler revokes
    page.click("#expire")
    expect(log.locator(".entry.connector", has_text="prod-postgres: revoke")).to_be_visible()
    expect(dm).to_contain_text("has ended")
    expect(page.locator(".state.expired").first).to_be_visible()
    shots.take("alice-access-expired")
    page.locator(".conversation", has_text="#access-approvals").click()
    expect(thread.locator(".message.reply", has_text="Expired: read_only on billing")).to_be_visible()
    expect(thread.locator(".thread-head")).to_have_text("2 replies")
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


RICH_TEXT = [  # (description, a rich_text block's elements, the HTML the page renders)
    ("a quote of user text stays text",
     [{"type": "rich_text_quote", "elements": [{"type": "text", "text": "<b>hi</b> *not bold* <@UALICE>\nnext"}]}],
     '<blockquote class="rt-quote">&lt;b&gt;hi&lt;/b&gt; *not bold* &lt;@UALICE&gt;\nnext</blockquote>'),
    ("styled text", [{"type": "rich_text_section", "elements": [
        {"type": "text", "text": "a", "style": {"bold": True}},
        {"type": "text", "text": "b", "style": {"italic": True, "code": True}},
        {"type": "text", "text": "c", "style": {"strike": True}}]}],
     '<div class="rt-section"><b>a</b><i><code>b</code></i><s>c</s></div>'),
    ("mentions, emoji, a link, a broadcast", [{"type": "rich_text_section", "elements": [
        {"type": "user", "user_id": "UALICE"}, {"type": "channel", "channel_id": "C1"},
        {"type": "emoji", "name": "warning"}, {"type": "emoji", "name": "x", "unicode": "274c"},
        {"type": "link", "url": "https://example.com/?a=1&b=2", "text": "docs"},
        {"type": "link", "url": "javascript:alert(1)", "text": "click"}, {"type": "broadcast", "range": "here"}]}],
     '<div class="rt-section"><span class="mention" data-user="UALICE">@Alice</span><span class="mention">#C1</span>'
     '<span class="emoji" title=":warning:">⚠️</span><span class="emoji" title=":x:">❌</span>'
     '<a href="https://example.com/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">docs</a>'
     '<span>click</span><span class="mention broadcast">@here</span></div>'),
    ("a numbered list from 3, nested bullets", [
        {"type": "rich_text_list", "style": "ordered", "offset": 2, "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "three"}]}]},
        {"type": "rich_text_list", "style": "bullet", "indent": 1, "border": 1, "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "dot"}]}]}],
     '<ol class="rt-list" start="3" style="list-style-type:decimal;margin-left:0px"><li>three</li></ol>'
     '<ul class="rt-list rt-border" style="list-style-type:circle;margin-left:24px"><li>dot</li></ul>'),
    ("preformatted, a date", [
        {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "a *b*"}]},
        {"type": "rich_text_section", "elements": [
            {"type": "date", "timestamp": 1796169600, "format": "{date_num} {time}", "fallback": "then"}]}],
     '<pre class="rt-pre">a *b*</pre><div class="rt-section"><time class="date" title="then">2026-12-02 00:00 UTC'
     '</time></div>'),
]


def test_rich_text_renders_as_slack_shows_it(page: Any) -> None:
    expect(page.locator(".person[data-user=UALICE]")).to_be_visible()
    rendered = page.evaluate(
        """async (cases) => {
            const { richText } = await import("/static/richtext.js");
            const md = { userName: (id) => ({ UALICE: "Alice" })[id] || id, channelName: (id) => id, now: 0 };
            return cases.map((elements) => richText({ type: "rich_text", elements }, { md }).innerHTML);
        }""",
        [elements for _, elements, _ in RICH_TEXT],
    )
    for (description, elements, expected), got in zip(RICH_TEXT, rendered, strict=True):
        assert got == expected, description
        Block.parse({"type": "rich_text", "elements": elements}).validate_json()  # type: ignore[union-attr]
