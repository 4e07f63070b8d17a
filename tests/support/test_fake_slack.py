"""The test support itself: WebClient against the fake Slack; SlackSender's signatures and wire formats."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from tests.support.fake_slack import FakeSlack
from tests.support.slack_sender import (
    Response,
    SlackSender,
    input_values,
    multi_users_value,
    select_value,
    sign,
    text_value,
)

MODAL = {
    "type": "modal",
    "callback_id": "access_request",
    "private_metadata": '{"r": 1}',
    "title": {"type": "plain_text", "text": "Request access"},
    "submit": {"type": "plain_text", "text": "Request"},
    "blocks": [
        {
            "type": "input",
            "block_id": "duration_hours",
            "label": {"type": "plain_text", "text": "Hours"},
            "element": {"type": "plain_text_input", "action_id": "duration_hours"},
        }
    ],
}
BUTTONS = [
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "42",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": "deny",
                "value": "42",
                "text": {"type": "plain_text", "text": "Deny"},
            },
        ],
    }
]


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        server.add_user("U1", "ada@example.com", real_name="Ada Lovelace", tz="Europe/London")
        server.add_user("U2", "bob@example.com", name="bob")
        server.add_user("U3", "gone@example.com", deleted=True)
        server.add_usergroup("S1", "db-admins", ["U1"])
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.url)


def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return str(raised.value.response["error"])


def test_auth_test_and_token(fake: FakeSlack, client: WebClient) -> None:
    reply = client.auth_test()
    assert (reply["team_id"], reply["user_id"], reply["bot_id"]) == ("T0TEST", "UBOT", "BBOT")
    assert fake.calls[0].token == "xoxb-test" and fake.calls[0].method == "auth.test"
    assert error_of(WebClient(base_url=fake.url).auth_test) == "not_authed"


def test_post_update_delete_a_dm(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel="U1", text="hello", blocks=BUTTONS)
    second = client.chat_postMessage(channel="C0GENERAL", text="second")
    assert first["channel"] == "DU1" and first["message"]["blocks"] == BUTTONS
    assert float(second["ts"]) > float(first["ts"]) and len(first["ts"].split(".")[1]) == 6
    assert fake.calls_to("chat.postMessage")[0]["blocks"] == BUTTONS
    updated = client.chat_update(channel="DU1", ts=first["ts"], text="decided")
    assert updated["ts"] == first["ts"] and fake.messages[("DU1", first["ts"])]["text"] == "decided"
    assert client.chat_delete(channel="DU1", ts=first["ts"])["ok"]
    assert (
        error_of(lambda: client.chat_update(channel="DU1", ts=first["ts"], text="x")) == "message_not_found"
    )
    assert error_of(lambda: client.chat_postMessage(channel="U404", text="x")) == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):
        assert error_of(lambda: client.chat_postMessage(channel="U1")) == "no_text"


def test_invalid_blocks_are_refused_like_slack(client: WebClient) -> None:
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="U1", text="t", blocks=too_long)
    assert raised.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0/text/text" in raised.value.response["response_metadata"]["messages"][0]


def test_ephemeral_and_conversations_open(fake: FakeSlack, client: WebClient) -> None:
    assert client.chat_postEphemeral(channel="C0GENERAL", user="U1", text="only you")["message_ts"]
    assert client.conversations_open(users="U2")["channel"]["id"] == "DU2"
    assert error_of(lambda: client.conversations_open(users="U404")) == "user_not_found"


def test_views_open_push_update_publish(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id="1.2.abc", view=MODAL)["view"]
    assert opened["id"].startswith("V") and opened["hash"] and opened["callback_id"] == "access_request"
    assert fake.last_view("access_request") == opened and fake.calls_to("views.open")[0]["view"] == MODAL
    pushed = client.views_push(trigger_id="1.2.abd", view=dict(MODAL, callback_id="decision_reason"))["view"]
    assert pushed["id"] != opened["id"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    stale = lambda: client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)  # noqa: E731
    assert error_of(stale) == "hash_conflict"
    with_external = client.views_open(trigger_id="1.2.abe", view=dict(MODAL, external_id="req-1"))["view"]
    assert client.views_update(external_id="req-1", view=MODAL)["view"]["id"] == with_external["id"]
    assert error_of(lambda: client.views_update(view_id="V404", view=MODAL)) == "not_found"
    assert error_of(lambda: client.views_open(trigger_id="", view=MODAL)) == "invalid_trigger_id"
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    first = client.views_publish(user_id="U1", view=home)["view"]
    assert client.views_publish(user_id="U1", view=home)["view"]["id"] == first["id"]
    assert fake.home_view("U1") is not None


def test_modal_checks(client: WebClient) -> None:
    no_submit = {k: v for k, v in MODAL.items() if k != "submit"}
    long_title = dict(MODAL, title={"type": "plain_text", "text": "x" * 25})
    for view in (no_submit, long_title):
        with pytest.raises(SlackApiError) as raised:
            client.views_open(trigger_id="1.2.abc", view=view)
        assert raised.value.response["error"] == "invalid_arguments"


def test_users(fake: FakeSlack, client: WebClient) -> None:
    ada = client.users_info(user="U1")["user"]
    assert ada["profile"]["email"] == "ada@example.com" and ada["real_name"] == "Ada Lovelace"
    assert ada["tz"] == "Europe/London" and isinstance(ada["tz_offset"], int) and ada["is_bot"] is False
    assert ada["profile"]["display_name"] == "ada" and client.users_info(user="U3")["user"]["deleted"] is True
    assert client.users_lookupByEmail(email="BOB@example.com")["user"]["id"] == "U2"
    assert error_of(lambda: client.users_lookupByEmail(email="gone@example.com")) == "users_not_found"
    assert error_of(lambda: client.users_info(user="U404")) == "user_not_found"
    listed = client.users_list()
    assert {"U1", "U2", "U3", "UBOT"} == {m["id"] for m in listed["members"]}
    assert listed["response_metadata"]["next_cursor"] == ""
    paged = [m["id"] for page in client.users_list(limit=2) for m in page["members"]]
    assert sorted(paged) == ["U1", "U2", "U3", "UBOT"]


def test_usergroups(fake: FakeSlack, client: WebClient) -> None:
    assert "users" not in client.usergroups_list()["usergroups"][0]
    assert client.usergroups_list(include_users=True)["usergroups"][0]["users"] == ["U1"]
    reply = client.usergroups_users_update(usergroup="S1", users=["U1", "U2"])
    assert reply["usergroup"]["users"] == ["U1", "U2"] and fake.usergroups["S1"]["users"] == ["U1", "U2"]
    assert fake.calls_to("usergroups.users.update")[0]["users"] == "U1,U2"
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
    assert error_of(lambda: client.usergroups_users_update(usergroup="S1", users=["U404"])) == "invalid_users"
    assert error_of(lambda: client.usergroups_users_list(usergroup="S404")) == "no_such_subteam"
    assert client.usergroups_users_update(usergroup="S1", users=["U3"])["usergroup"]["users"] == []


def test_file_upload_v2(fake: FakeSlack, client: WebClient) -> None:
    reply = client.files_upload_v2(channel="DU1", content=b"\x89PNG qr code", filename="qr.png", title="QR")
    assert reply["file"]["name"] == "qr.png"
    (upload,) = fake.uploads.values()
    assert (upload.filename, upload.length, upload.completed, upload.channel_id) == (
        "qr.png",
        12,
        True,
        "DU1",
    )
    assert [c.method for c in fake.calls] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


def test_unknown_method(fake: FakeSlack, client: WebClient) -> None:
    assert error_of(lambda: client.api_call("nope.nothing")) == "unknown_method"
    assert fake.calls[-1].failed and fake.calls[-1].error == "unknown_method"


def test_fail_next_gives_429_with_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", times=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="U1", text="hi")
        assert raised.value.response.status_code == 429
        assert raised.value.response.headers["Retry-After"] in ("3", ["3"])
        assert raised.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="U1", text="hi")["ok"]
    assert [c.failed for c in fake.calls] == [True, True, False]
    fake.fail_next("users.info", error="fatal_error", status=500, retry_after=None)
    with pytest.raises(SlackApiError) as raised:
        client.users_info(user="U1")
    assert raised.value.response.status_code == 500 and "Retry-After" not in raised.value.response.headers


def test_wait_for_and_clear(fake: FakeSlack, client: WebClient) -> None:
    threading.Timer(0.1, lambda: client.chat_postMessage(channel="U1", text="later")).start()
    assert fake.wait_for("chat.postMessage", timeout=3)[0]["text"] == "later"
    with pytest.raises(AssertionError, match=r"chat.postMessage"):
        fake.wait_for("views.open", timeout=0.05)
    fake.clear()
    assert fake.calls == []


def test_form_encoded_and_body_token(fake: FakeSlack) -> None:
    client = WebClient(base_url=fake.url)
    client.api_call(
        "chat.postMessage", params={"token": "xoxb-form", "channel": "U1", "blocks": json.dumps(BUTTONS)}
    )
    call = fake.calls[0]
    assert call.token == "xoxb-form" and "token" not in call.args and call.args["blocks"] == BUTTONS


def test_response_url_posts_are_recorded(fake: FakeSlack) -> None:
    hook = WebhookClient(f"{fake.hooks_url}commands/T0TEST/1/tok")
    assert hook.send(text="done", response_type="ephemeral").status_code == 200
    assert fake.calls_to("response_url")[0] == {
        "text": "done",
        "response_type": "ephemeral",
        "_path": "/hooks/commands/T0TEST/1/tok",
    }
    fake.fail_next("response_url", error="expired_url", status=404, retry_after=None)
    assert hook.send(text="late").status_code == 404 and fake.calls[-1].failed


# --- SlackSender against a tiny server that verifies signatures and echoes ------------------------

SECRET = "s3cret"


class EchoServer:
    def __init__(self) -> None:
        verifier = SignatureVerifier(SECRET)
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                received.append((headers, body))
                ok = self.path == "/slack/events" and verifier.is_valid_request(body, headers)
                reply = json.dumps({"headers": headers, "body": body.decode()}).encode() if ok else b""
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def payload_of(response: Response) -> dict[str, Any]:
    assert response.status == 200, response.text
    body = response.json()["body"]
    return dict(json.loads(parse_qs(body)["payload"][0]))


def test_command_is_signed_and_form_encoded(echo: EchoServer) -> None:
    reply = SlackSender(echo.url, SECRET).command("U1", "extend 7 2")
    assert reply.status == 200
    form = {k: v[0] for k, v in parse_qs(reply.json()["body"], keep_blank_values=True).items()}
    assert (form["command"], form["text"], form["user_id"], form["team_id"]) == (
        "/access",
        "extend 7 2",
        "U1",
        "T0TEST",
    )
    assert form["trigger_id"] and form["response_url"].startswith("https://hooks.slack.com/commands/")
    assert reply.json()["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_interactive_payloads(echo: EchoServer) -> None:
    sender = SlackSender(echo.url, SECRET, response_url_base="http://127.0.0.1:1/hooks/")
    clicked = payload_of(
        sender.block_actions("U2", "approve", value="42", channel_id="DU2", message_ts="1.2")
    )
    assert clicked["type"] == "block_actions" and clicked["actions"][0]["value"] == "42"
    assert clicked["container"] == {
        "type": "message",
        "message_ts": "1.2",
        "channel_id": "DU2",
        "is_ephemeral": False,
    }
    assert clicked["response_url"].startswith("http://127.0.0.1:1/hooks/actions/")
    view = {"id": "V1", "hash": "1.a", "callback_id": "access_request", "private_metadata": "m"}
    picked = payload_of(
        sender.block_actions(
            "U1",
            "resource",
            view=view,
            selected_option={"value": "db"},
            values=input_values({"resource": select_value("db")}),
        )
    )
    assert picked["container"] == {"type": "view", "view_id": "V1"} and "response_url" not in picked
    assert picked["view"]["state"]["values"]["resource"]["resource"]["selected_option"]["value"] == "db"
    values = input_values({"duration_hours": text_value("2"), "grantees": multi_users_value(["U2"])})
    submitted = payload_of(sender.view_submission("U1", view, values))
    assert submitted["view"]["callback_id"] == "access_request" and submitted["view"]["hash"] == "1.a"
    assert submitted["view"]["state"]["values"]["duration_hours"]["duration_hours"]["value"] == "2"
    typed = payload_of(sender.block_suggestion("U1", "resource", "pro", view=view))
    assert (typed["type"], typed["value"], typed["action_id"]) == ("block_suggestion", "pro", "resource")
    assert payload_of(sender.view_closed("U1", view))["type"] == "view_closed"


def test_event_callback_and_retry_headers(echo: EchoServer) -> None:
    reply = SlackSender(echo.url, SECRET).event(
        {"type": "app_home_opened", "user": "U1", "tab": "home"}, event_id="Ev1", retry_num=1
    )
    body = json.loads(reply.json()["body"])
    assert (body["type"], body["event_id"], body["event"]["type"]) == (
        "event_callback",
        "Ev1",
        "app_home_opened",
    )
    assert reply.json()["headers"]["X-Slack-Retry-Num"] == "1"


def test_raw_forged_unsigned_and_stale(echo: EchoServer) -> None:
    sender = SlackSender(echo.url, SECRET)
    assert sender.raw(b"{}", "application/json", signature="v0=" + "0" * 64).status == 401
    assert sender.raw(b"{}", "application/json", sign=False).status == 401
    assert sender.raw(b"{}", "application/json", timestamp=int(time.time()) - 600).status == 401
    assert sender.raw(b"{}", "application/json").status == 200
    assert SlackSender(echo.url, "wrong").command("U1").status == 401
    headers, body = echo.received[-1]
    assert sign("wrong", headers["X-Slack-Request-Timestamp"], body) == headers["X-Slack-Signature"]
