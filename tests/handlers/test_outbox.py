"""OutboxSender: late approval DMs, credentials decrypted for the grantee only (whole), retries, giving up, and one
bad row never holding up the others."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.lifecycle.records import Notice
from bot.slack.deliveries import web_client
from bot.slack.outbox import MAX_ATTEMPTS, OutboxSender
from handlers.views.notifications import render
from store import outbox as outbox_store
from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import buttons, dms_to, submit_request


def test_a_late_approval_dm_shows_the_outcome_without_buttons(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    bot.outbox.send_due()
    (erin,) = dms_to(bot, "UERIN")
    assert buttons(erin) == [] and "Approved" in erin["text"]


def test_credentials_are_decrypted_into_the_grantee_dm(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    bot.outbox.send_due()
    grant_id = bot.container.service.get(request_id).grants[0].id
    secret = bot.container.secrets.encrypt(json.dumps({"user": "u_7", "password": "hunter2"}))
    with bot.container.db.begin() as session:
        outbox_store.enqueue(now=bot.clock.now(),
            kind="access_granted",
            recipient="UALICE",
            request_id=request_id,
            grant_id=grant_id,
            secret=secret, session=session
        )
    assert bot.outbox.send_due() == 1
    last = dms_to(bot, "UALICE")[-1]
    assert "hunter2" in str(last["blocks"]) and "hunter2" not in last["text"]
    assert any(b["action_id"] == "revoke" for b in buttons(last))


def test_other_failures_back_off_then_give_up(bot: Bot) -> None:
    submit_request(bot)
    bot.fake.fail_next("chat.postMessage", error="internal_error", status=500, retry_after=None, times=100)
    for _ in range(MAX_ATTEMPTS + 1):
        bot.outbox.send_due()
        bot.clock.advance(hours=2)
    with bot.container.db.begin() as session:
        rows = outbox_store.outbox_messages(session=session)
        assert rows and all(
            m.sent_at is not None and m.last_error for m in rows if m.kind != "approval_update"
        )
    assert not [c for c in bot.fake.calls if c.method == "chat.postMessage" and not c.failed]


def _enqueue_notices(bot: Bot, request_id: int, recipients: list[str], **poison: Any) -> list[int]:
    with bot.container.db.begin() as session:
        rows = [outbox_store.enqueue(now=bot.clock.now(), kind="grantee_notice", recipient=r, request_id=request_id,
                                     session=session) for r in recipients]
        rows[17].kind, rows[17].payload = poison.get("kind", rows[17].kind), poison.get("payload", {})
        rows[17].secret = poison.get("secret")
        if "recipient" in poison:
            rows[17].recipient = poison["recipient"]
        session.flush()
        return [r.id for r in rows]


POISONS = {
    "a secret no key decrypts": {"kind": "access_granted", "secret": "gAAAAABnot-a-fernet-token"},
    "a rendering bug": {"payload": {"explode": True}},
    "Slack refusing the row (unknown channel)": {"recipient": "UGONE"},
    "a network error": {"recipient": "UNETWORK"},
}


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
def test_one_poisoned_row_among_50_fails_alone_and_the_others_go_out_in_the_same_tick(
    bot: Bot, poison: str
) -> None:
    request_id = submit_request(bot)
    bot.outbox.send_due()
    recipients = [f"UFAN{n:02d}" for n in range(50)]
    for user_id in recipients:
        bot.fake.add_user(user_id, f"{user_id.lower()}@example.com")

    def renderer(notice: Notice) -> dict[str, Any] | None:
        if notice.payload.get("explode"):
            raise KeyError("a bug in a view")
        return render(notice)

    client = web_client("xoxb-test", bot.fake.url)
    if poison == "a network error":  # that one recipient's calls never reach Slack
        client = _Unreachable("UNETWORK", client)
    sender = OutboxSender(bot.container.db, client, renderer, clock=bot.clock, secrets=bot.container.secrets,
                          channel_interval=0)
    ids = _enqueue_notices(bot, request_id, recipients, **POISONS[poison])
    bot.fake.clear()
    try:
        assert sender.send_due() == 49
    finally:
        sender.close()
    delivered = {c.args["channel"] for c in bot.fake.timed_calls("chat.postMessage")}
    assert delivered == set(recipients) - {"UFAN17"}
    with bot.container.db.begin() as session:
        rows = {m.id: m for m in outbox_store.outbox_messages(session=session) if m.id in ids}
        poisoned = rows.pop(ids[17])
        assert all(m.sent_at is not None and m.last_error is None for m in rows.values())
        assert poisoned.last_error
        if poison == "a secret no key decrypts":  # retrying cannot help: given up at once, and said why
            assert poisoned.sent_at is not None and "decrypt" in poisoned.last_error
        else:
            assert poisoned.sent_at is None and poisoned.due_at > bot.clock.now()  # retried later, alone


class _Unreachable:
    """A WebClient whose calls for one channel fail as a dropped connection would (after its own retries)."""

    def __init__(self, channel: str, client: WebClient) -> None:
        self.channel, self.client = channel, client

    def chat_postMessage(self, **kwargs: Any) -> Any:  # noqa: N802 — slack_sdk's name
        if kwargs.get("channel") == self.channel:
            raise ConnectionResetError("connection reset by peer")
        return self.client.chat_postMessage(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_4kb_credential_reaches_the_grantee_whole(bot: Bot) -> None:
    request_id = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(request_id), channel_id="DUDANA")
    bot.outbox.send_due()
    grant_id = bot.container.service.get(request_id).grants[0].id
    token = "".join(secrets.choice(string.ascii_letters + string.digits + "<>&*_`~") for _ in range(4096))
    secret = bot.container.secrets.encrypt(json.dumps({"user": "u_7", "kubeconfig_token": token}))
    with bot.container.db.begin() as session:
        outbox_store.enqueue(now=bot.clock.now(), kind="access_granted", recipient="UALICE", request_id=request_id,
                             grant_id=grant_id, secret=secret, session=session)
    assert bot.outbox.send_due() == 1
    last = dms_to(bot, "UALICE")[-1]
    shown = [e["text"] for b in last["blocks"] if b["type"] == "rich_text"
             for pre in b["elements"] for e in pre["elements"]]
    assert shown[0] == "u_7" and "".join(shown[1:]) == token  # whole, byte for byte, no escaping
    assert all(len(part) <= 3000 for part in shown)
    assert token[:50] not in last["text"]
    assert "4096 characters in 2 parts" in str(last["blocks"])


def test_a_busy_channels_backlog_is_left_in_place_while_the_other_channels_are_served(bot: Bot) -> None:
    """300 DMs queued for one person and one for each of five others: the tick sends the busy channel's next one and
    the five others, and leaves the rest of the backlog unclaimed, due and in order (it used to claim all 300, only
    to put them back, on every tick — the CPU of a bot with a backlog)."""
    request_id = submit_request(bot)
    bot.outbox.send_due()
    others = [f"UOTHER{n}" for n in range(5)]
    for user_id in ["UBUSY", *others]:
        bot.fake.add_user(user_id, f"{user_id.lower()}@example.com")
    sender = OutboxSender(bot.container.db, web_client("xoxb-test", bot.fake.url), render, clock=bot.clock,
                          secrets=bot.container.secrets, batch=50, max_wait=0.0)  # Slack's 1 s per channel
    with bot.container.db.begin() as session:
        queued = bot.clock.now()
        backlog = [outbox_store.enqueue(now=queued, kind="grantee_notice", recipient="UBUSY", request_id=request_id,
                                        session=session) for _ in range(300)]
        for user_id in others:
            outbox_store.enqueue(now=queued, kind="grantee_notice", recipient=user_id, request_id=request_id,
                                 session=session)
        session.flush()
        backlog_ids = [m.id for m in backlog]
    bot.fake.clear()
    try:
        assert sender.send_due() == 6
    finally:
        sender.close()
    delivered = [c.args["channel"] for c in bot.fake.timed_calls("chat.postMessage")]
    assert sorted(delivered) == sorted(["UBUSY", *others])
    with bot.container.db.begin() as session:
        rows = {m.id: m for m in outbox_store.outbox_messages(session=session) if m.id in set(backlog_ids)}
        first_batch, untouched = backlog_ids[1:50], backlog_ids[50:]
        assert rows[backlog_ids[0]].sent_at is not None
        assert all(rows[i].sent_at is None and rows[i].due_at > queued for i in first_batch)  # put back, not failed
        assert all(rows[i].attempts == 0 and rows[i].last_error is None for i in first_batch)
        assert all(rows[i].sent_at is None and rows[i].due_at == queued and rows[i].attempts == 0
                   and rows[i].lease_until is None for i in untouched)  # never claimed
