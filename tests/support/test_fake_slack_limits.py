"""The fake Slack is slow and busy like the real one: latency per call (concurrent calls overlap), 429 bursts with
Retry-After, per-channel message limits, users.list pages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.deliveries import web_client
from tests.support.fake_slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        for n in range(8):
            running.add_user(f"U{n}", f"u{n}@example.com")
        yield running


def test_latency_delays_each_call_without_serialising_them(fake: FakeSlack) -> None:
    fake.latency = 0.3
    client = WebClient(token="xoxb-test", base_url=fake.url)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: client.chat_postMessage(channel=f"U{n}", text="hi"), range(8)))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5  # eight calls of 0.3 s each, side by side
    fake.method_latency["users.info"] = 0.0
    started = time.monotonic()
    client.users_info(user="U1")
    assert time.monotonic() - started < 0.3


def test_a_429_burst_is_waited_out_by_the_bots_client(fake: FakeSlack) -> None:
    fake.rate_limit("views.publish", times=2, retry_after=1)
    client = web_client("xoxb-test", fake.url)
    client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert [c.failed for c in fake.calls] == [True, True, False]
    fake.rate_limit("views.publish", times=1, retry_after=30)  # too long to wait inside a call: the caller decides
    with pytest.raises(SlackApiError) as raised:
        client.views_publish(user_id="U1", view={"type": "home", "blocks": []})
    assert raised.value.response.status_code == 429


def test_the_channel_limit_refuses_a_second_message_within_the_second(fake: FakeSlack) -> None:
    fake.channel_limit(1.0)
    client = WebClient(token="xoxb-test", base_url=fake.url)
    client.chat_postMessage(channel="C1", text="one")
    client.chat_postMessage(channel="C2", text="another channel is not limited")
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="two")
    assert raised.value.response.status_code == 429 and raised.value.response.headers["Retry-After"] in ("1", ["1"])
    assert fake.paced_refusals == 1


def test_users_list_pages_with_a_cursor_and_caps_the_page(fake: FakeSlack) -> None:
    client = WebClient(token="xoxb-test", base_url=fake.url)
    seen, cursor, pages = [], None, 0
    while True:
        page = client.users_list(limit=3, cursor=cursor)
        seen += [m["id"] for m in page["members"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and seen == list(fake.users)
    for n in range(8, 1100):
        fake.add_user(f"U{n}", f"u{n}@example.com")
    with pytest.raises(SlackApiError) as raised:
        client.users_list()
    assert raised.value.response["error"] == "limit_required"
    assert len(client.users_list(limit=5000)["members"]) == 1000
    with pytest.raises(SlackApiError):
        client.users_list(limit=10, cursor="garbage")
