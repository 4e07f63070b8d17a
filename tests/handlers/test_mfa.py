"""TOTP: enrolment through /access mfa, one-time codes, lockout, and the modal's mfa_code field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pyotp
import pytest
from cryptography.fernet import Fernet

from bot.clock import FakeClock
from bot.crypto import SecretBox
from bot.mfa import MAX_FAILURES, MfaService
from store import repository as repo
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
        row = repo.get_mfa(session, "UALICE")
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


@pytest.fixture
def mfa_bot(db: Database) -> Iterator[Bot]:
    config = CONFIG.replace(
        "      pending_timeout: 2h\n", "      pending_timeout: 2h\n    settings: {require_mfa: true}\n", 1
    )
    with running_bot(db, config) as running:
        yield running


def test_enroll_then_request_with_a_code(mfa_bot: Bot) -> None:
    bot = mfa_bot
    bot.sender.command("UALICE", "mfa")
    enrolled = bot.fake.calls_to("response_url")[-1]["text"]
    secret = re.search(r"`([A-Z2-7]{16,})`", enrolled)
    assert secret is not None, enrolled
    totp = pyotp.TOTP(secret.group(1))
    bot.sender.command("UALICE", f"mfa {totp.at(bot.clock.now())}")
    assert "confirmed" in bot.fake.calls_to("response_url")[-1]["text"]

    view = choose_resource(bot, open_modal(bot))
    assert any(b["block_id"] == "mfa_code" for b in view["blocks"])
    form = values("2")
    wrong = bot.sender.view_submission("UALICE", view, form).json()
    assert wrong["response_action"] == "errors" and set(wrong["errors"]) == {"mfa_code"}
    bot.clock.advance(seconds=30)
    code = totp.at(bot.clock.now())
    form["mfa_code"] = {"mfa_code": {"type": "plain_text_input", "value": code}}
    ok = bot.sender.view_submission("UALICE", view, form)
    assert ok.status == 200 and not ok.body.strip(b"{} "), ok.text
    assert len(requests(bot)) == 1
    replay = bot.sender.view_submission("UALICE", view, form).json()
    assert set(replay["errors"]) == {"mfa_code"} and len(requests(bot)) == 1
