"""POST /slack/events refuses what is not a well-formed, signed Slack request: a table of malformed payloads (no
500, the server stays up, nothing changes), size and signature checks with one log line, repeated deliveries."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.handlers.conftest import SIGNING_SECRET, Bot
from tests.support.slack_sender import FORM, JSON, command_payload, event_callback, interactive_envelope, sign

USER = {"id": "UDANA", "username": "udana", "name": "udana", "team_id": "T0TEST"}
ACTION = {"type": "button", "action_id": "approve", "block_id": "b", "value": "1", "action_ts": "1.0"}
VIEW = {"id": "V1", "type": "modal", "callback_id": "access_request", "private_metadata": "", "state": {"values": {}}}


def form(payload: Any) -> bytes:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)}).encode()


def interactive(**fields: Any) -> bytes:
    return form(interactive_envelope(fields))


def event(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


CASES: list[tuple[str, bytes, str, int]] = [
    ("an event body that is not JSON", b"{not json", JSON, 400),
    ("an event body that is a JSON array", b"[1, 2]", JSON, 400),
    ("an unknown envelope type", event({"type": "nope"}), JSON, 400),
    ("an event_callback without its event", event({"type": "event_callback", "event_id": "Ev1"}), JSON, 400),
    ("an event whose type is a number", event(event_callback({"type": 5})), JSON, 400),
    ("an event of a type nothing handles", event(event_callback({"type": "reaction_added"})), JSON, 200),
    ("a body that is not UTF-8", b"\xff\xfe\x00garbage", FORM, 400),
    ("a Content-Type Slack never sends", b"hello", "text/plain", 400),
    ("a payload that is not JSON", form("{nope"), FORM, 400),
    ("a payload that is a list", form([1, 2]), FORM, 400),
    ("an unknown interactive type", interactive(type="dialog_submission", user=USER), FORM, 400),
    ("block_actions without a user", interactive(type="block_actions", actions=[ACTION], trigger_id="1.2.3"),
     FORM, 400),
    ("block_actions without actions", interactive(type="block_actions", user=USER, trigger_id="1.2.3"), FORM, 400),
    ("block_actions whose actions are not a list",
     interactive(type="block_actions", user=USER, actions={"a": 1}, trigger_id="1.2.3"), FORM, 400),
    ("a button value that is a number",
     interactive(type="block_actions", user=USER, actions=[{**ACTION, "value": 7}], trigger_id="1.2.3"), FORM, 400),
    ("an action id nothing handles",
     interactive(type="block_actions", user=USER, actions=[{**ACTION, "action_id": "zzz"}], trigger_id="1.2.3"),
     FORM, 200),
    ("an Approve whose value is not a request id",
     interactive(type="block_actions", user=USER, actions=[{**ACTION, "value": "'; DROP TABLE"}],
                 trigger_id="1.2.3", channel={"id": "DUDANA"}, container={"channel_id": "DUDANA"}), FORM, 200),
    ("an Approve for a request that does not exist",
     interactive(type="block_actions", user=USER, actions=[{**ACTION, "value": "99999999999999999999999"}],
                 trigger_id="1.2.3", channel={"id": "DUDANA"}, container={"channel_id": "DUDANA"}), FORM, 200),
    ("a view_submission without its view", interactive(type="view_submission", user=USER), FORM, 400),
    ("a view that is a string", interactive(type="view_submission", user=USER, view="modal"), FORM, 400),
    ("a view with an unknown callback id",
     interactive(type="view_submission", user=USER, view={**VIEW, "callback_id": "not_ours"}), FORM, 400),
    ("state values of the wrong type",
     interactive(type="view_submission", user=USER, view={**VIEW, "state": {"values": []}}), FORM, 400),
    ("a text input whose value is a number",
     interactive(type="view_submission", user=USER, view={**VIEW, "state": {"values": {
         "duration_hours": {"duration_hours": {"type": "plain_text_input", "value": 5}}}}}), FORM, 400),
    ("a selected option without a value",
     interactive(type="view_submission", user=USER, view={**VIEW, "state": {"values": {
         "resource": {"resource": {"type": "external_select", "selected_option": {"text": "x"}}}}}}), FORM, 400),
    ("a reason modal whose metadata is not ours",
     interactive(type="view_submission", user=USER, view={**VIEW, "callback_id": "decision_reason",
                                                          "private_metadata": "{broken"}), FORM, 200),
    ("an options load whose value is a number",
     interactive(type="block_suggestion", user=USER, action_id="resource", block_id="resource", value=3), FORM, 400),
    ("a slash command without its user", urlencode({"command": "/access", "trigger_id": "1.2.3"}).encode(),
     FORM, 400),
    ("a form that is not a form", b"=&=&&==", FORM, 400),
]


def post(bot: Bot, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    timestamp = str(int(time.time()))
    all_headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp,
                   "X-Slack-Signature": sign(SIGNING_SECRET, timestamp, body), **(headers or {})}
    request = urllib.request.Request(f"{bot.url}/slack/events", data=body, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_malformed_payloads_get_a_4xx_or_slacks_empty_200_and_change_nothing(bot: Bot) -> None:
    bot.fake.clear()
    before = bot.container.service.list()
    for description, body, content_type, expected in CASES:
        status, answer = post(bot, body, content_type)
        bot.listeners.wait_idle()
        assert status == expected, f"{description}: HTTP {status} {answer[:200]!r}"
        assert b"Traceback" not in answer, description
    assert bot.listeners.failures == []  # no listener blew up after its ack either
    assert bot.container.service.list() == before
    assert not [c for c in bot.fake.calls if c.method.startswith(("views.", "chat.postMessage", "chat.update"))
                and c.args.get("channel") != "UDANA"]
    with urllib.request.urlopen(f"{bot.url}/healthz", timeout=5) as health:
        assert health.status == 200  # still up


def test_signature_checks_come_first_and_log_one_line_without_the_body(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.fake.clear()
    body = urlencode(command_payload("UALICE", "list", response_url="https://hooks.slack.com/commands/SECRET")).encode()
    stale = str(int(time.time()) - 3600)
    cases = [
        ("unsigned", {"X-Slack-Signature": "", "X-Slack-Request-Timestamp": ""}, 401),
        ("mis-signed", {"X-Slack-Signature": "v0=" + "0" * 64}, 401),
        ("stale", {"X-Slack-Request-Timestamp": stale, "X-Slack-Signature": sign(SIGNING_SECRET, stale, body)}, 401),
        ("a timestamp that is not a number", {"X-Slack-Request-Timestamp": "soon"}, 400),
    ]
    for description, headers, expected in cases:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            status, _ = post(bot, body, FORM, headers)
        assert status == expected, description
        lines = [r.getMessage() for r in caplog.records if r.name.startswith(("bot.", "slack_bolt"))]
        assert len(lines) == 1, (description, lines)
        assert "SECRET" not in lines[0] and "hooks.slack.com" not in lines[0] and "UALICE" not in lines[0]
    assert bot.fake.calls == [] and bot.container.service.list() == []


def _post_streaming(bot: Bot, body: bytes) -> tuple[int, bytes]:
    """POST ``body`` as a client that keeps sending: the server may answer (and close) before it has read it all,
    which a client that must finish sending first (urllib) sees as a broken pipe."""
    url = urllib.parse.urlsplit(bot.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        connection.putrequest("POST", "/slack/events")
        for name, value in {"Content-Type": FORM, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for start in range(0, len(body), 64 * 1024):
                connection.send(body[start:start + 64 * 1024])
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was read: what this test wants
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def test_a_body_over_1_mib_is_refused_before_it_is_read_whole(bot: Bot) -> None:
    big = b"payload=" + b"x" * (1 << 20)
    status, answer = _post_streaming(bot, big)
    assert status == 413 and b"1048576" in answer
    with urllib.request.urlopen(f"{bot.url}/healthz", timeout=5) as health:
        assert health.status == 200


def test_a_retried_slash_command_and_a_retried_event_are_acted_on_once(bot: Bot) -> None:
    command = urlencode(command_payload("UALICE", "help", response_url=f"{bot.fake.hooks_url}commands/1",
                                        trigger_id="111.222.abc")).encode()
    assert post(bot, command, FORM)[0] == 200
    bot.listeners.wait_idle()
    assert post(bot, command, FORM, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})[0] == 200
    bot.listeners.wait_idle()
    assert len(bot.fake.calls_to("response_url")) == 1

    opened = event(event_callback({"type": "app_home_opened", "user": "UALICE", "tab": "home"}, event_id="Ev0RETRY"))
    for retry in (None, "1", "2"):
        assert post(bot, opened, JSON, {"X-Slack-Retry-Num": retry} if retry else None)[0] == 200
        bot.listeners.wait_idle()
    assert len([c for c in bot.fake.calls_to("views.publish") if c["user_id"] == "UALICE"]) == 1


def test_the_same_signed_slash_command_delivered_six_times_at_once_is_acted_on_once(bot: Bot) -> None:
    """A proxy (or Slack's retry) sends one command six times at the same moment: each delivery is answered 200,
    the command runs once (on PostgreSQL the later INSERTs wait for the first one's commit, then do nothing)."""
    command = urlencode(command_payload("UALICE", "help", response_url=f"{bot.fake.hooks_url}commands/2",
                                        trigger_id="333.444.def")).encode()
    start = threading.Barrier(6)
    statuses: list[int] = []

    def deliver(retry: int) -> None:
        start.wait(timeout=10)
        statuses.append(post(bot, command, FORM, {"X-Slack-Retry-Num": str(retry)} if retry else None)[0])

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    bot.listeners.wait_idle()
    assert statuses == [200] * 6
    assert len(bot.fake.calls_to("response_url")) == 1


def test_a_listener_that_does_not_ack_within_3_s_is_answered_503_with_a_warning(
        bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An overloaded or stuck bot is the bot's failure: a 5xx an alert sees, not Bolt's 'unhandled request'."""
    import handlers.request_modal

    release = threading.Event()

    def stuck(*args: Any) -> None:  # the submission's validation, before its ack, never returns in time
        release.wait(30)
        return None

    monkeypatch.setattr(handlers.request_modal, "submit", stuck)
    caplog.set_level(logging.WARNING, logger="bot.slack.http")
    try:  # posted as Slack does, without waiting for the listener (the sender would wait for it to finish)
        status, answer = post(bot, interactive(type="view_submission", user=USER, view=VIEW, trigger_id="1.2.3"),
                              FORM)
    finally:
        release.set()
    assert (status, answer) == (503, b"not acknowledged in time")
    assert any("view_submission request was not acknowledged within 3 s" in r.getMessage() for r in caplog.records)
    bot.listeners.wait_idle()
    assert bot.sender.command("UALICE", "help").status == 200  # and the bot serves on


def test_background_work_steps_aside_while_a_delivery_is_being_answered(
        bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm-up after a start or a reload pauses between its pieces (``Answering.step_aside``) while Slack
    waits for an answer from this process, and goes on as soon as that answer is sent."""
    import handlers.request_modal
    from bot.slack.observed import ObservedApp

    assert isinstance(bot.app, ObservedApp)
    answering = bot.app.answering
    monkeypatch.setattr(answering, "longest", 30.0)  # a pause as long as the answer takes, for this test
    entered, release = threading.Event(), threading.Event()

    def slow(*args: Any) -> None:  # the submission's validation, before its ack, takes its time
        entered.set()
        release.wait(30)
        return None

    monkeypatch.setattr(handlers.request_modal, "submit", slow)
    answer: list[tuple[int, bytes]] = []
    poster = threading.Thread(target=lambda: answer.append(post(bot, interactive(
        type="view_submission", user=USER, view=VIEW, trigger_id="1.2.3"), FORM)))
    poster.start()
    assert entered.wait(10)
    assert answering.in_progress == 1
    stepped: list[bool] = []
    worker = threading.Thread(target=lambda: (answering.step_aside(), stepped.append(release.is_set())))
    worker.start()
    worker.join(0.3)
    assert worker.is_alive()  # waiting for the answer
    release.set()
    worker.join(10)
    poster.join(10)
    assert stepped == [True]  # went on once the answer was on its way
    assert answer[0][0] == 200
    assert answering.in_progress == 0
    started = time.monotonic()
    answering.step_aside()  # nothing being answered: no wait at all
    assert time.monotonic() - started < 5
    bot.listeners.wait_idle()
