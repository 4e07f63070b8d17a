"""What a person does on the demo's page, through its JSON endpoints (as the page's script sends it).

The request modal is driven as Slack drives it: the picker's options come from the bot's options-load answer
(``option_groups``), a pick is a ``block_actions`` with ``selected_options`` after which the bot redraws the
modal, and ``view.state.values`` carries only the blocks the modal shows.
"""

from __future__ import annotations

from typing import Any

from bot.demo.server import Demo
from tests.demo.conftest import post, state, wait_for


def act(demo: Demo, **body: Any) -> dict[str, Any]:
    status, answer = post(demo, "demo/act", body)
    assert status == 200, answer
    return answer


def conversation(demo: Demo, user: str, name: str = "accessbot") -> dict[str, Any]:
    return next(c for c in state(demo, user)["channels"] if c["name"] == name)


def dm(demo: Demo, user: str) -> list[dict[str, Any]]:
    return next(c for c in state(demo, user)["channels"] if c["kind"] == "dm")["messages"]


def texts(demo: Demo, user: str) -> str:
    return "\n".join(m["text"] for m in dm(demo, user))


def block(view: dict[str, Any], block_id: str) -> dict[str, Any] | None:
    return next((b for b in view["blocks"] if b.get("block_id") == block_id), None)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The message's buttons, each with the block_id Slack sends with a click."""
    return [{**e, "block_id": b.get("block_id", "")} for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"] if e["type"] == "button"]


def click(demo: Demo, user: str, channel: str, message: dict[str, Any], action_id: str) -> None:
    pressed = next(b for b in buttons(message) if b["action_id"] == action_id)
    act(demo, user=user, type="click", action=pressed,
        container={"type": "message", "channel_id": channel, "message_ts": message["ts"]})


def _redrawn(demo: Demo, user: str, before: str, what: str) -> dict[str, Any]:
    return dict(wait_for(what, lambda: next((v for v in state(demo, user)["modals"][-1:] if v["hash"] != before),
                                            None)))


def request_modal(demo: Demo, user: str, query: str, label: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """/access, type ``query`` in the resource picker, pick the option ``label``: the redrawn modal, its values
    and the picked option's group (its integration)."""
    act(demo, user=user, type="command", text="/access")
    opened = wait_for("the modal", lambda: state(demo, user)["modals"])[-1]
    answer = act(demo, user=user, type="suggest", view_id=opened["id"], action_id="resource", block_id="resource",
                 value=query)
    assert answer["options"] == [] and answer["option_groups"], f"no grouped options for {query!r}: {answer}"
    offered = {o["text"]["text"]: (g["label"]["text"], o) for g in answer["option_groups"] for o in g["options"]}
    assert label in offered, f"{label!r} is not offered for {query!r}: {sorted(offered)}"
    group, option = offered[label]
    picked = {"type": "multi_external_select", "selected_options": [option]}
    values: dict[str, Any] = {"resource": {"resource": picked}}
    before = state(demo, user)["modals"][-1]["hash"]
    act(demo, user=user, type="click", container={"type": "view", "view_id": opened["id"]},
        action={"action_id": "resource", "block_id": "resource", **picked}, values=values)
    view = _redrawn(demo, user, before, "the modal redrawn for the chosen resource")
    return view, values, group


def choose_permission(demo: Demo, user: str, view: dict[str, Any], values: dict[str, Any],
                      name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pick a permission in the (dispatching) select; the modal the bot redraws for it, and the values."""
    select = block(view, "permission")
    assert select is not None, "the modal offers no permission"
    option = next(o for o in select["element"]["options"] if o["value"] == name)
    chosen = {"type": "static_select", "selected_option": option}
    values = {**values, "permission": {"permission": chosen}}
    act(demo, user=user, type="click", container={"type": "view", "view_id": view["id"]},
        action={"action_id": "permission", "block_id": "permission", **chosen}, values=values)
    return _redrawn(demo, user, view["hash"], f"the modal redrawn for {name}"), values


def fill(view: dict[str, Any], values: dict[str, Any], duration: str | None, why: str) -> dict[str, Any]:
    """The state.values of the filled modal: hours only where the modal asks for them."""
    filled = dict(values)
    if "permission" not in filled:
        select = block(view, "permission")
        assert select is not None, "the modal offers no permission"
        shown = select["element"].get("initial_option") or select["element"]["options"][0]
        filled["permission"] = {"permission": {"type": "static_select", "selected_option": shown}}
    if duration is not None:
        assert block(view, "duration_hours") is not None, "the modal asks for no hours"
        filled["duration_hours"] = {"duration_hours": {"type": "plain_text_input", "value": duration}}
    filled["justification"] = {"justification": {"type": "plain_text_input", "value": why}}
    return filled
