"""Where approvers are asked (SPEC §6): their DMs, the flow's team channel, or both (``approval.notify``).

``approval.channel`` posts the request — or a break-glass review — to that channel, with the same buttons
as the DMs (only eligible approvers' clicks count there); ``notify: dm`` (the default) also DMs every approver,
``both`` does the same, and ``channel`` asks in the channel only. Runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from bot.lifecycle.events import Events
from policy.config import Flow
from policy.identity import Identity
from store.models import AccessRequest

ASK = "approval_request"  # the outbox kind of an approval (or review) message: remembered, updated in place


def in_channel(flow: Flow) -> str | None:
    return flow.approval.channel


def by_dm(flow: Flow) -> bool:
    return flow.approval.channel is None or flow.approval.notify != "channel"


def ask(session: Session, events: Events, row: AccessRequest, flow: Flow, approvers: Sequence[Identity],
        now: datetime, *, channel_too: bool = True) -> None:
    """Queue the approval (or review) message for the channel and/or each approver's DM."""
    channel = in_channel(flow)
    if channel and channel_too:
        events.notify(session, now, ASK, channel, row)
    if by_dm(flow):
        events.notify_all(session, now, ASK, [a.key for a in approvers], row)
