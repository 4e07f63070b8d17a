"""The texts of ``/access`` sub-commands (ephemeral replies): pure builders from plain values."""

from __future__ import annotations

from collections.abc import Sequence

from bot.lifecycle.records import RequestRecord
from handlers.views.approval import outcome
from handlers.views.common import escape, hours, when
from policy.describe import describe_labels, has_label
from policy.flows import CompiledFlow
from policy.states import RequestState

HELP = """*accessbot* — just-in-time access
• `/access` — request access (opens a form)
• `/access list` — your requests and access
• `/access flows [LABEL]` — what you may request, and how (only flows with that label)
• `/access extend ID [HOURS]` — extend your active access
• `/access revoke ID` — end access now
• `/access cancel ID` — cancel a pending request
• `/access mfa` — enroll your authenticator (TOTP); `/access mfa CODE` confirms it
• `/access help` — this message"""


def request_list(records: Sequence[RequestRecord]) -> str:
    if not records:
        return "You have no requests yet. Use `/access` to make one."
    return "\n".join(
        f"*#{r.id}* {escape(r.permission, 60)} on "
        + ", ".join(escape(n, 80) for n in r.resource_names[:3])
        + f" · {outcome(r)}"
        + (f" until {when(r.expires_at)}" if r.state == RequestState.ACTIVE else "")
        for r in records
    )


def flow_list(flows: Sequence[CompiledFlow], label: str = "") -> str:
    """``/access flows [LABEL]``: the flows the user may use now (with that label), each with its labels."""
    if not flows:
        return "No access flow lets you request anything right now."
    chosen = [f for f in flows if has_label(f.flow, label)] if label else list(flows)
    if not chosen:
        known = sorted({item for f in flows for item in f.flow.labels}, key=str.casefold)
        return (f"None of your flows has the label `{escape(label, 40)}`. "
                + (f"Their labels: {', '.join(f'`{escape(k, 40)}`' for k in known)}." if known
                   else "Your flows have no labels.")
                + " `/access flows` lists them all.")
    return "\n".join(
        f"• *{escape(f.name, 80)}* — up to {hours(f.flow.grant_for)}, "
        + ("automatic" if f.flow.approval.type == "automatic" else "needs approval")
        + (f" · {escape(describe_labels(f.flow), 200)}" if f.flow.labels else "")
        for f in chosen
    )


def extended(record: RequestRecord) -> str:
    return f"Request #{record.id} is extended until {when(record.expires_at)}."


def unknown(verb: str) -> str:
    return f"I don't know `/access {escape(verb, 40)}`. Here is what I do:\n{HELP}"
