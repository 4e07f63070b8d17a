"""Guards that a removal once went unnoticed by the suite (issue 9): each test fails when its guard is deleted.

- the ``extend.max_times`` check at click time;
- force-closing one grant cancels only that grant's revoke retries (its request's other grants keep theirs);
- a reminder written for an expiry that an extension has since moved is not sent;
- the self-approval refusal says why;
- the App Home is republished after Extend, Revoke now and Cancel clicked on it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.lifecycle.requests import RequestInput
from integrations.base import ConnectorError, GrantSpec
from integrations.noop import NoopConnector
from policy.errors import InvalidRequest, NotEligible
from store import due_work, outbox
from store.db import Database
from store.due_work import JobKey, JobKind, RemindPayload
from tests.bot.fixtures import CONFIG, make_container
from tests.handlers.conftest import Bot
from tests.handlers.test_e2e import submit_request

BILLING, SEARCH = "db/database/billing", "db/database/search"


def approved(db: Database, resources: list[str] | None = None, config: str = CONFIG):  # type: ignore[no-untyped-def]
    c, clock, noop = make_container(db, config)
    alice = c.directory.identity("UALICE", clock.now())
    pending = c.service.submit(RequestInput(alice, resources or [BILLING], "read_only", duration_hours="1",
                                            justification="INC-1"))
    c.service.approve(pending.request.id, c.directory.identity("UDANA", clock.now()))
    return c, clock, noop, alice, pending.request.id


def test_extend_refuses_past_max_times_and_changes_nothing(db: Database) -> None:
    c, clock, noop, alice, request_id = approved(db)
    first = c.service.get(request_id).grants[0].expires_at
    assert first is not None
    c.extending.extend(request_id, alice)
    c.extending.extend(request_id, alice)
    with pytest.raises(InvalidRequest, match=r"already extended 2 time\(s\), the most flow read-any allows"):
        c.extending.extend(request_id, alice)
    assert c.service.get(request_id).grants[0].expires_at == first + timedelta(hours=2)
    assert [op for op, _ in noop.calls] == ["grant", "extend", "extend"]


class RevokeFails(NoopConnector):
    def revoke(self, grant: GrantSpec) -> None:
        super().revoke(grant)
        raise ConnectorError("target down")


def test_force_closing_one_grant_keeps_the_other_grants_revoke_retries(db: Database) -> None:
    c, clock, _, alice, request_id = approved(db, [BILLING, SEARCH])
    c.granting.connectors["db"] = c.extending.connectors["db"] = c.revoking.connectors["db"] = RevokeFails(  # type: ignore[index]
        "db", c.policy.current.config.integrations[0].catalog_resources())
    c.revoking.revoke(request_id, alice)
    first, second = (g.id for g in c.service.get(request_id).grants)
    c.revoking.force_close(first, c.directory.identity("USECOPS", clock.now()))
    with db.begin() as session:
        pending = {(w.kind, w.grant_id) for w in due_work.pending_work(request_id=request_id, session=session)}
    assert ("revoke", second) in pending and ("revoke", first) not in pending
    record = c.service.get(request_id)
    assert [g.state for g in record.grants] == ["revoked", "revoking"] and record.state != "revoked"
    c.revoking.force_close(second, c.directory.identity("USECOPS", clock.now()))
    assert c.service.get(request_id).state == "revoked"  # the last grant closed ends the request


def test_a_reminder_for_an_expiry_moved_since_is_not_sent(db: Database) -> None:
    c, clock, _, alice, request_id = approved(db)
    grant = c.service.get(request_id).grants[0]
    assert grant.expires_at is not None
    c.extending.extend(request_id, alice)
    clock.advance(timedelta(minutes=55))  # 5 minutes before the old expiry: the old reminder's time
    assert c.worker.dispatch(JobKey(JobKind.REMIND, grant.id), RemindPayload(expires_at=grant.expires_at))
    with db.begin() as session:
        assert not [m for m in outbox.outbox_messages(session=session) if m.kind == "expiry_reminder"]
    current = c.service.get(request_id).grants[0].expires_at
    assert current is not None
    assert c.worker.dispatch(JobKey(JobKind.REMIND, grant.id), RemindPayload(expires_at=current))
    with db.begin() as session:
        assert [m for m in outbox.outbox_messages(session=session) if m.kind == "expiry_reminder"]


SRE_APPROVE = CONFIG.replace(
    "        - conditions: [{attribute: group, op: is, values: [dba]}]\n      escalation:",
    "        - conditions: [{attribute: group, op: is, values: [dba, sre]}]\n      escalation:", 1)


def test_self_approval_is_refused_saying_why(db: Database) -> None:
    c, clock, _ = make_container(db, SRE_APPROVE)
    alice = c.directory.identity("UALICE", clock.now())
    pending = c.service.submit(RequestInput(alice, [BILLING], "read_only", duration_hours="1", justification="x"))
    with pytest.raises(NotEligible) as refused:
        c.service.approve(pending.request.id, alice)
    assert refused.value.message == "You cannot approve or deny a request you made or that grants you access."
    assert c.service.approve(pending.request.id, c.directory.identity("UBOB", clock.now())).request.state == "active"


def _home_click(bot: Bot, user_id: str, action_id: str, request_id: int) -> None:
    before = len(bot.fake.calls_to("views.publish"))
    reply = bot.sender.block_actions(user_id, action_id, value=str(request_id),
                                     view={"type": "home", "id": "VHOME", "blocks": []})
    assert reply.status == 200
    published = bot.fake.calls_to("views.publish")[before:]
    assert [c.get("user_id") for c in published] == [user_id], f"{action_id} did not republish the App Home"


def test_app_home_is_republished_after_extend_revoke_and_cancel(bot: Bot) -> None:
    active = submit_request(bot)
    bot.sender.block_actions("UDANA", "approve", value=str(active), channel_id="DUDANA")
    _home_click(bot, "UALICE", "extend", active)
    assert bot.container.service.get(active).grants[0].extensions_used == 1
    _home_click(bot, "UALICE", "revoke", active)
    assert bot.container.service.get(active).state == "revoked"
    pending = submit_request_again(bot)
    _home_click(bot, "UALICE", "cancel", pending)
    assert bot.container.service.get(pending).state == "canceled"


def submit_request_again(bot: Bot) -> int:
    alice = bot.container.directory.identity("UALICE", bot.clock.now())
    return bot.container.service.submit(RequestInput(alice, [BILLING], "read_only", duration_hours="1",
                                                     justification="again")).request.id
