"""A running demo (the real bot, the demo's Web API and page) on free loopback ports."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.demo.server import Demo

VIEW_FIELDS = {"type", "callback_id", "external_id", "title", "submit", "close", "blocks", "private_metadata",
               "clear_on_close", "notify_on_close"}


@pytest.fixture
def demo() -> Iterator[Demo]:
    with Demo(port=0, tick_seconds=0.2) as running:
        yield running


def post(demo: Demo, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(demo.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def state(demo: Demo, user: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{demo.url}demo/state?user={user}", timeout=30) as answer:
        return dict(json.loads(answer.read()))


def wait_for(what: str, found: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_valid_block_kit(demo: Demo) -> int:
    """Every message and view the bot sent is valid Block Kit by slack_sdk's models; returns how many."""
    checked = 0
    for entry in demo.workspace.log:
        if entry["kind"] != "api":
            continue
        args = entry["detail"].get("request") or {}
        if entry["title"] in ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url"):
            for raw in args.get("blocks") or []:
                block = Block.parse(raw)
                assert block is not None, f"{entry['title']}: unknown block {raw}"
                block.validate_json()
                checked += 1
        elif entry["title"].startswith("views."):
            view = args["view"]
            View(**{k: v for k, v in view.items() if k in VIEW_FIELDS}).validate_json()
            checked += 1
    return checked
