"""The request modal (callback_id ``access_request``): a pure builder and a parser of its submitted values.

The resource picker is a ``multi_external_select`` (block_id = action_id ``resource``, up to 100 items) whose
option values are short stable ids (:mod:`policy.picker`); choosing resources or a permission redraws the modal
so that what it asks follows the flows that apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from handlers.views.common import Ids, mfa_code_input, plain, when
from policy.flows import MAX_RESOURCES_PER_REQUEST
from policy.picker import OptionGroup, resource_label, resource_option_id
from policy.request_form import RequestForm

MAX_OPTIONS = 100
MAX_GRANTEES = 20
MAX_JUSTIFICATION = 1000
SUMMARY_NAMES = 5


@dataclass(frozen=True, slots=True)
class ModalState:
    """What the modal shows: the chosen resources, the permissions they offer and what the flows demand."""

    resources: tuple[tuple[str, str], ...] = ()  # (option id, label) of each chosen resource
    permissions: tuple[tuple[str, str], ...] = ()  # (name, label)
    permission: str | None = None
    grantees: str = "none"  # none | optional | required
    grantee_hint: str = ""
    show_duration: bool = True
    require_duration: bool = False
    max_hours: float | None = None
    indefinite: bool = False
    require_justification: bool = False
    require_mfa: bool = False
    notice: str | None = None  # what the user must know first (nothing open now, resources that do not fit)


def permission_label(name: str, risk: str | None) -> str:
    return f"{name} ({risk} risk)" if risk else name


def state_of(form: RequestForm) -> ModalState:
    """The modal's values for a request form (its resources as picker options: bundles shown expanded)."""
    notice = form.problem
    if form.opens_next is not None:
        name, at = form.opens_next
        notice = f"None of your flows is open right now. Flow *{name}* opens next, {when(at)}."
    return ModalState(
        resources=tuple((resource_option_id(r.key), resource_label(r)) for r in form.resources),
        permissions=tuple((p.name, permission_label(p.name, risk)) for p, risk in form.permissions),
        permission=form.permission,
        grantees=form.grantees,
        grantee_hint=form.grantee_hint,
        show_duration=form.show_duration,
        require_duration=form.require_duration,
        max_hours=form.max_hours,
        indefinite=form.indefinite,
        require_justification=form.require_justification,
        require_mfa=form.require_mfa,
        notice=notice,
    )


@dataclass(frozen=True, slots=True)
class Submission:
    resources: list[str] = field(default_factory=list)  # option ids (or catalog keys) as selected
    permission: str | None = None
    grantees: list[str] = field(default_factory=list)
    duration_hours: str | None = None
    justification: str | None = None
    mfa_code: str | None = None


def option(value: str, label: str) -> dict[str, Any]:
    return {"text": plain(label), "value": value[:150]}


def option_groups(groups: tuple[OptionGroup, ...]) -> dict[str, Any]:
    """An options load's answer: ``option_groups`` by integration (Slack: a group label of 75 characters)."""
    return {"option_groups": [
        {"label": plain(g.label), "options": [option(o.value, o.label) for o in g.options]}
        for g in groups if g.options
    ]}


def _duration_hint(state: ModalState) -> str:
    if state.indefinite:
        limit = "no upper limit"
    elif state.max_hours is not None:
        limit = f"at most {state.max_hours:g}"
    else:
        limit = "up to the flow's maximum"
    empty = "" if state.require_duration else " Empty = the maximum."
    return f"Decimal hours, {limit}.{empty}"


def _resource_block(state: ModalState) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "multi_external_select",
        "action_id": Ids.RESOURCE,
        "placeholder": plain("Type to search resources and bundles"),
        "min_query_length": 0,
        "max_selected_items": MAX_RESOURCES_PER_REQUEST,
    }
    if state.resources:
        element["initial_options"] = [option(*r) for r in state.resources[:MAX_RESOURCES_PER_REQUEST]]
    block = {"type": "input", "block_id": Ids.RESOURCE, "dispatch_action": True, "label": plain("Resources"),
             "element": element}
    if len(state.resources) > 1:
        names = ", ".join(label.split(" · ")[0] for _, label in state.resources[:SUMMARY_NAMES])
        more = len(state.resources) - SUMMARY_NAMES
        block["hint"] = plain(f"{len(state.resources)} resources: {names}" + (f" and {more} more" if more > 0
                                                                               else ""), 150)
    return block


def build(state: ModalState) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if state.notice:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":information_source: {state.notice}"}})
    blocks.append(_resource_block(state))
    if state.permissions:
        select: dict[str, Any] = {
            "type": "static_select",
            "action_id": Ids.PERMISSION,
            "placeholder": plain("Choose a permission"),
            "options": [option(v, label) for v, label in state.permissions[:MAX_OPTIONS]],
        }
        chosen = next((p for p in state.permissions if p[0] == state.permission), None)
        if chosen is None and len(state.permissions) == 1:
            chosen = state.permissions[0]
        if chosen is not None:
            select["initial_option"] = option(*chosen)
        blocks.append({"type": "input", "block_id": Ids.PERMISSION, "dispatch_action": True,
                       "label": plain("Permission"), "element": select})
    if state.grantees != "none":
        blocks.append({
            "type": "input",
            "block_id": Ids.GRANTEES,
            "optional": state.grantees == "optional",
            "label": plain("For whom"),
            "hint": plain(state.grantee_hint, 150),
            "element": {"type": "multi_users_select", "action_id": Ids.GRANTEES, "placeholder": plain("People"),
                        "max_selected_items": MAX_GRANTEES},
        })
    if state.show_duration:
        blocks.append({
            "type": "input",
            "block_id": Ids.DURATION,
            "optional": not state.require_duration,
            "label": plain("Duration in hours"),
            "hint": plain(_duration_hint(state), 150),
            "element": {"type": "plain_text_input", "action_id": Ids.DURATION, "placeholder": plain("e.g. 1.5")},
        })
    blocks.append({
        "type": "input",
        "block_id": Ids.JUSTIFICATION,
        "optional": not state.require_justification,
        "label": plain("Justification"),
        "element": {
            "type": "plain_text_input",
            "action_id": Ids.JUSTIFICATION,
            "multiline": True,
            "max_length": MAX_JUSTIFICATION,
            "placeholder": plain("Why do you need this access?"),
        },
    })
    if state.require_mfa:
        blocks.append(mfa_code_input(optional=True))
    return {
        "type": "modal",
        "callback_id": Ids.REQUEST_MODAL,
        "title": plain("Request access", 24),
        "submit": plain("Request", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"permission": state.permission} if state.permission else {}),
        "blocks": blocks,
    }


def _value(values: dict[str, Any], block: str) -> dict[str, Any]:
    return (values.get(block) or {}).get(block) or {}


def _selected(entry: dict[str, Any]) -> str | None:
    chosen = entry.get("selected_option")
    return str(chosen["value"]) if chosen else None


def selected_resources(entry: dict[str, Any]) -> list[str]:
    """The picker's values: ``selected_options`` of the multi-select (or one ``selected_option``)."""
    many = entry.get("selected_options")
    if many is not None:
        return [str(o["value"]) for o in many if isinstance(o, dict) and o.get("value")]
    one = _selected(entry)
    return [one] if one else []


def parse(view: dict[str, Any]) -> Submission:
    values = (view.get("state") or {}).get("values") or {}
    return Submission(
        resources=selected_resources(_value(values, Ids.RESOURCE)),
        permission=_selected(_value(values, Ids.PERMISSION)),
        grantees=list(_value(values, Ids.GRANTEES).get("selected_users") or []),
        duration_hours=_value(values, Ids.DURATION).get("value"),
        justification=_value(values, Ids.JUSTIFICATION).get("value"),
        mfa_code=_value(values, Ids.MFA_CODE).get("value"),
    )
