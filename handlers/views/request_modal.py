"""The request modal (callback_id ``access_request``): a pure builder and a parser of its submitted values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from handlers.views.common import Ids, mfa_code_input, plain
from policy.request_form import RequestForm
from policy.resources import Resource

MAX_OPTIONS = 100


@dataclass(frozen=True, slots=True)
class ModalState:
    """What the modal shows: the chosen resource, the permissions it offers and what the flows demand."""

    resource: tuple[str, str] | None = None  # (key, label)
    permissions: tuple[tuple[str, str], ...] = ()  # (name, label)
    permission: str | None = None
    show_grantees: bool = False
    max_hours: float | None = None
    require_duration: bool = False
    require_justification: bool = False
    require_mfa: bool = False


def resource_label(resource: Resource) -> str:
    return f"{resource.name} · {resource.type} · {resource.integration}"


def state_of(form: RequestForm) -> ModalState:
    """The modal's values for a request form (labels for the resource and its permissions)."""
    return ModalState(
        resource=(form.resource.key, resource_label(form.resource)) if form.resource else None,
        permissions=tuple((p.name, f"{p.name} ({p.risk} risk)") for p in form.permissions),
        permission=form.permission,
        show_grantees=form.show_grantees,
        max_hours=form.max_hours,
        require_duration=form.require_duration,
        require_justification=form.require_justification,
        require_mfa=form.require_mfa,
    )


@dataclass(frozen=True, slots=True)
class Submission:
    resource: str | None
    permission: str | None
    grantees: list[str] = field(default_factory=list)
    duration_hours: str | None = None
    justification: str | None = None
    mfa_code: str | None = None


def option(value: str, label: str) -> dict[str, Any]:
    return {"text": plain(label), "value": value[:150]}


def build(state: ModalState) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "type": "external_select",
        "action_id": Ids.RESOURCE,
        "placeholder": plain("Type to search"),
        "min_query_length": 0,
    }
    if state.resource is not None:
        resource["initial_option"] = option(*state.resource)
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": Ids.RESOURCE,
            "dispatch_action": True,
            "label": plain("Resource"),
            "element": resource,
        },
    ]
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
        blocks.append(
            {"type": "input", "block_id": Ids.PERMISSION, "label": plain("Permission"), "element": select}
        )
    if state.show_grantees:
        blocks.append(
            {
                "type": "input",
                "block_id": Ids.GRANTEES,
                "optional": True,
                "label": plain("For whom"),
                "hint": plain("Leave empty to request for yourself.", 150),
                "element": {
                    "type": "multi_users_select",
                    "action_id": Ids.GRANTEES,
                    "placeholder": plain("People"),
                },
            }
        )
    max_text = "no limit" if state.max_hours is None else f"at most {state.max_hours:g}"
    blocks.append(
        {
            "type": "input",
            "block_id": Ids.DURATION,
            "optional": not state.require_duration,
            "label": plain("Duration in hours"),
            "hint": plain(
                f"Decimal hours, {max_text}." + ("" if state.require_duration else " Empty = the maximum."),
                150,
            ),
            "element": {
                "type": "plain_text_input",
                "action_id": Ids.DURATION,
                "placeholder": plain("e.g. 1.5"),
            },
        }
    )
    blocks.append(
        {
            "type": "input",
            "block_id": Ids.JUSTIFICATION,
            "optional": not state.require_justification,
            "label": plain("Justification"),
            "element": {
                "type": "plain_text_input",
                "action_id": Ids.JUSTIFICATION,
                "multiline": True,
                "max_length": 1000,
                "placeholder": plain("Why do you need this access?"),
            },
        }
    )
    if state.require_mfa:
        blocks.append(
            mfa_code_input(optional=True)
        )
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


def parse(view: dict[str, Any]) -> Submission:
    values = (view.get("state") or {}).get("values") or {}
    return Submission(
        resource=_selected(_value(values, Ids.RESOURCE)),
        permission=_selected(_value(values, Ids.PERMISSION)),
        grantees=list(_value(values, Ids.GRANTEES).get("selected_users") or []),
        duration_hours=_value(values, Ids.DURATION).get("value"),
        justification=_value(values, Ids.JUSTIFICATION).get("value"),
        mfa_code=_value(values, Ids.MFA_CODE).get("value"),
    )
