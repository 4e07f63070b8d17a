"""TOTP: enrolment through /access mfa, one-time codes, lockout, and the modal's mfa_code field."""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from cryptography.fernet import Fernet

from bot.clock import FakeClock
from bot.security.crypto import SecretBox
from bot.security.mfa import MAX_FAILURES, Enrolment, MfaService
from store import mfa as mfa_store
from store.db import Database
from tests.bot.fixtures import CONFIG, START
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_e2e import choose_resource, open_modal, requests, values


def test_codes_work_once_and_failures_lock(db: Database) -> None:
    clock = FakeClock(START)
    box = SecretBox([Fernet.generate_key().decode()])
    mfa = MfaService(db, clock, box)
    enrolment = mfa.enroll("UALICE", "alice@example.com")
    assert enrolment is not None and enrolment.uri.startswith("otpauth://totp/")
    with db.begin() as session:
        row = mfa_store.get_mfa("UALICE", session=session)
        assert row is not None and enrolment.secret not in row.secret_encrypted
    totp = pyotp.TOTP(enrolment.secret)
    assert not mfa.enrolled("UALICE")
    code = totp.at(clock.now())
    assert mfa.verify("UALICE", code) and mfa.enrolled("UALICE")
    assert not mfa.verify("UALICE", code)  # replay
    assert mfa.enroll("UALICE", "alice@example.com") is None  # a confirmed enrolment is kept
    clock.advance(seconds=30)
    assert mfa.verify("UALICE", totp.at(clock.now()))
    clock.advance(seconds=30)
    for _ in range(MAX_FAILURES):
        assert not mfa.verify("UALICE", "000000")
    assert not mfa.verify("UALICE", totp.at(clock.now()))  # locked
    clock.advance(timedelta(minutes=6))
    assert mfa.verify("UALICE", totp.at(clock.now()))
    assert not mfa.verify("UNOBODY", "123456")


def enrolment_dm(bot: Bot, user: str) -> tuple[str, str]:
    """(secret, otpauth URI) from the enrolment DM ``/access mfa`` sent to ``user``."""
    dm = next(c for c in reversed(bot.fake.calls_to("chat.postMessage")) if c["channel"] == user)
    text = " ".join(str(b.get("text", {}).get("text", "")) for b in dm["blocks"])
    secret = re.search(r"`([A-Z2-7]{16,})`", text)
    uri = re.search(r"(otpauth://\S+)", text)
    assert secret is not None and uri is not None, text
    return secret.group(1), html.unescape(uri.group(1))


def enroll(bot: Bot, user: str) -> pyotp.TOTP:
    """``/access mfa`` (the key comes by DM), then ``/access mfa CODE``; the next code is usable."""
    bot.sender.command(user, "mfa")
    totp = pyotp.TOTP(enrolment_dm(bot, user)[0])
    bot.sender.command(user, f"mfa {totp.at(bot.clock.now())}")
    assert "confirmed" in bot.fake.calls_to("response_url")[-1]["text"]
    bot.clock.advance(seconds=30)  # the confirmation spent this time step's code
    return totp


@pytest.fixture
def mfa_bot(db: Database) -> Iterator[Bot]:
    config = CONFIG.replace(
        "      pending_timeout: 2h\n", "      pending_timeout: 2h\n    settings: {require_mfa: true}\n", 1
    )
    with running_bot(db, config) as running:
        yield running


def test_enroll_then_request_with_a_code(mfa_bot: Bot) -> None:
    bot = mfa_bot
    totp = enroll(bot, "UALICE")

    view = choose_resource(bot, open_modal(bot))
    assert any(b["block_id"] == "mfa_code" for b in view["blocks"])
    form = values("2")
    wrong = bot.sender.view_submission("UALICE", view, form).json()
    assert wrong["response_action"] == "errors" and set(wrong["errors"]) == {"mfa_code"}
    code = totp.at(bot.clock.now())
    form["mfa_code"] = {"mfa_code": {"type": "plain_text_input", "value": code}}
    ok = bot.sender.view_submission("UALICE", view, form)
    assert ok.status == 200 and not ok.body.strip(b"{} "), ok.text
    assert len(requests(bot)) == 1
    replay = bot.sender.view_submission("UALICE", view, form)  # the same view again: nothing new, no code spent
    assert replay.status == 200 and not replay.body.strip(b"{} ") and len(requests(bot)) == 1
    again = bot.sender.view_submission("UALICE", choose_resource(bot, open_modal(bot)), form).json()
    assert set(again["errors"]) == {"mfa_code"} and len(requests(bot)) == 1  # a new modal: the code is spent


def test_enrolment_dm_has_the_uri_and_a_qr_code_and_never_logs_the_secret(
    mfa_bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = mfa_bot
    caplog.set_level(logging.DEBUG)
    reply = bot.sender.command("UALICE", "mfa")
    assert reply.status == 200
    secret, uri = enrolment_dm(bot, "UALICE")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    ephemeral = bot.fake.calls_to("response_url")[-1]["text"]
    assert "DM" in ephemeral and secret not in ephemeral
    (upload,) = bot.fake.uploads.values()
    assert upload.completed and upload.channel_id == "DUALICE"
    assert upload.data == Enrolment(secret, uri).qr_png() and upload.data.startswith(b"\x89PNG")
    carrying = [c for c in bot.fake.calls if secret in str(c.args)]
    assert [(c.method, c.args.get("channel")) for c in carrying] == [("chat.postMessage", "UALICE")]
    assert secret not in caplog.text


def test_enrolment_works_when_the_qr_upload_fails(mfa_bot: Bot) -> None:
    bot = mfa_bot
    bot.fake.fail_next("files.getUploadURLExternal", error="fatal_error", status=500, retry_after=None)
    totp = enroll(bot, "UALICE")
    assert bot.fake.uploads == {}
    assert MfaService(bot.container.db, bot.clock, bot.container.secrets).verify(
        "UALICE", totp.at(bot.clock.now())
    )


@pytest.mark.parametrize("through", ["service", "request modal"])
def test_concurrent_submissions_of_one_code_let_exactly_one_through(mfa_bot: Bot, through: str) -> None:
    bot = mfa_bot
    totp = enroll(bot, "UALICE")
    code = totp.at(bot.clock.now())
    views = [choose_resource(bot, open_modal(bot)) for _ in range(4)]  # four modals, one code
    form = values("2")
    form["mfa_code"] = {"mfa_code": {"type": "plain_text_input", "value": code}}
    service = MfaService(bot.container.db, bot.clock, bot.container.secrets)
    start = threading.Barrier(4)
    results: list[bool] = []

    def attempt(view: dict[str, Any]) -> None:
        start.wait()
        if through == "service":
            results.append(service.verify("UALICE", code))
        else:
            reply = bot.sender.view_submission("UALICE", view, form)
            results.append(reply.status == 200 and not reply.body.strip(b"{} "))

    threads = [threading.Thread(target=attempt, args=(view,)) for view in views]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False, False, False, True]
    if through == "request modal":
        assert len(requests(bot)) == 1


def test_the_time_step_moves_forward_by_compare_and_set(db: Database) -> None:
    clock = FakeClock(START)
    mfa = MfaService(db, clock, SecretBox([Fernet.generate_key().decode()]))
    assert mfa.enroll("UALICE", "alice@example.com") is not None
    with db.begin() as session:
        assert mfa_store.advance_mfa_step(user_id="UALICE", step=100, session=session)
        assert not mfa_store.advance_mfa_step(user_id="UALICE", step=100, session=session)  # the same step again
        assert not mfa_store.advance_mfa_step(user_id="UALICE", step=99, session=session)  # an older one
        assert mfa_store.advance_mfa_step(user_id="UALICE", step=101, session=session)
        assert not mfa_store.advance_mfa_step(user_id="UNOBODY", step=1, session=session)
