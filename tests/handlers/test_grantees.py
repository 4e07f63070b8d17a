"""Grantees (issue 11): deduplicated and at most 20, in the modal (max_selected_items) and in the service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.lifecycle.requests import RequestInput
from policy.errors import InvalidRequest
from store.db import Database
from tests.bot.fixtures import CONFIG
from tests.handlers.conftest import Bot, running_bot
from tests.handlers.test_e2e import choose_resource, open_modal, requests, values
from tests.support.slack_sender import multi_users_value

FOR_OTHERS = CONFIG.replace("    grant_for: 4h\n", "    grant_for: 4h\n    request_for: [themselves, others]\n", 1)


@pytest.fixture
def others_bot(db: Database) -> Iterator[Bot]:
    assert FOR_OTHERS != CONFIG
    with running_bot(db, FOR_OTHERS) as running:
        yield running


def test_one_grantee_named_500_times_is_one_grantee(others_bot: Bot) -> None:
    bot = others_bot
    view = choose_resource(bot, open_modal(bot))
    grantees = next(b for b in view["blocks"] if b["block_id"] == "grantees")
    assert grantees["element"]["max_selected_items"] == 20 and grantees["optional"] is True
    assert "leave empty to request for yourself" in grantees["hint"]["text"]
    form = values("1")
    form["grantees"] = {"grantees": multi_users_value(["UBOB"] * 500)}
    reply = bot.sender.view_submission("UALICE", view, form)
    assert reply.status == 200 and not reply.body.strip(b"{} "), reply.text
    (request,) = requests(bot)
    assert request.grantee_ids == ("UBOB",)
    bot.sender.block_actions("UDANA", "approve", value=str(request.id), channel_id="DUDANA")
    assert [g.grantee_id for g in bot.container.service.get(request.id).grants] == ["UBOB"]
    assert len(bot.noop.calls) == 1


def test_more_than_20_grantees_are_refused_on_the_field_and_by_the_service(others_bot: Bot) -> None:
    bot = others_bot
    view = choose_resource(bot, open_modal(bot))
    form = values("1")
    form["grantees"] = {"grantees": multi_users_value([f"U{i:08d}" for i in range(21)])}
    body = bot.sender.view_submission("UALICE", view, form).json()
    assert body["response_action"] == "errors" and "at most 20" in body["errors"]["grantees"]
    assert requests(bot) == []
    service, now = bot.container.service, bot.clock.now()
    alice = bot.container.directory.identity("UALICE", now)
    many = [bot.container.directory.identity(f"U{i:08d}", now) for i in range(21)]
    with pytest.raises(InvalidRequest, match="at most 20"):
        service.submit(RequestInput(alice, ["db/database/billing"], "read_only", many, "1", "INC-1"))
    bob = bot.container.directory.identity("UBOB", now)
    outcome = service.submit(RequestInput(alice, ["db/database/billing"], "read_only", [bob] * 500, "1", "INC-1"))
    assert outcome.request.grantee_ids == ("UBOB",)
