"""Block Kit checks the fake Slack applies before accepting a message or a view.

Slack rejects malformed blocks with `invalid_blocks` (messages) or `invalid_arguments` (views) and a list
of messages naming a JSON pointer. The limits here are the documented ones most likely to bite a bot: text
lengths, counts, missing required fields, duplicate ids, an `initial_option` that is not among the options,
a modal with inputs but no submit button. Unknown block or element types are refused, as Slack does.
"""

from __future__ import annotations

from typing import Any

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100

_SELECTS_WITH_OPTIONS = {"static_select", "multi_static_select"}
_ELEMENTS_WITHOUT_OPTIONS = {
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "plain_text_input",
    "number_input",
    "email_text_input",
    "url_text_input",
    "rich_text_input",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "image",
    "file_input",
    "workflow_button",
}
_OPTION_LISTS = {"checkboxes": 10, "radio_buttons": 10, "overflow": 5}
_LOOSE_BLOCKS = {"rich_text", "video", "file", "markdown", "table"}


class BlockErrors:
    """Collects `must ... [json-pointer:/...]` messages in Slack's wording."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, pointer: str, problem: str) -> None:
        self.messages.append(f"{problem} [json-pointer:{pointer}]")

    def max_len(self, pointer: str, value: Any, limit: int) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.add(pointer, f"must be less than {limit + 1} characters")


def check_text(errors: BlockErrors, pointer: str, obj: Any, *, limit: int, plain_only: bool = False) -> None:
    if not isinstance(obj, dict):
        errors.add(pointer, "must provide an object")
        return
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        errors.add(f"{pointer}/type", f"must be one of {', '.join(allowed)}")
    text = obj.get("text")
    if not isinstance(text, str):
        errors.add(f"{pointer}/text", "must provide a string")
    elif not text:
        errors.add(f"{pointer}/text", "must be more than 0 characters")
    else:
        errors.max_len(f"{pointer}/text", text, limit)


def _check_options(
    errors: BlockErrors, pointer: str, options: Any, *, limit: int, plain_only: bool
) -> list[Any]:
    if not isinstance(options, list) or not options:
        errors.add(pointer, "must provide a non-empty array")
        return []
    if len(options) > limit:
        errors.add(pointer, f"must provide no more than {limit} items")
    for i, option in enumerate(options):
        at = f"{pointer}/{i}"
        if not isinstance(option, dict):
            errors.add(at, "must provide an object")
            continue
        check_text(errors, f"{at}/text", option.get("text"), limit=75, plain_only=plain_only)
        if not isinstance(option.get("value"), str):
            errors.add(f"{at}/value", "must provide a string")
        errors.max_len(f"{at}/value", option.get("value"), 150)
        if "description" in option:
            check_text(errors, f"{at}/description", option["description"], limit=75, plain_only=plain_only)
    return [o.get("value") for o in options if isinstance(o, dict)]


def _check_initial_options(
    errors: BlockErrors, pointer: str, element: dict[str, Any], values: list[Any]
) -> None:
    initial = (
        [element["initial_option"]] if "initial_option" in element else element.get("initial_options", [])
    )
    for option in initial:
        if not isinstance(option, dict) or option.get("value") not in values:
            errors.add(f"{pointer}/initial_option", "must match one of the provided options")


def check_element(errors: BlockErrors, pointer: str, element: Any, action_ids: set[str]) -> None:
    if not isinstance(element, dict):
        errors.add(pointer, "must provide an object")
        return
    kind = element.get("type")
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or not action_id:
            errors.add(f"{pointer}/action_id", "must provide a non-empty string")
        else:
            errors.max_len(f"{pointer}/action_id", action_id, 255)
            if action_id in action_ids:
                errors.add(f"{pointer}/action_id", f"duplicate action_id `{action_id}`")
            action_ids.add(action_id)
    if "placeholder" in element:
        check_text(errors, f"{pointer}/placeholder", element["placeholder"], limit=150, plain_only=True)
    if "confirm" in element:
        _check_confirm(errors, f"{pointer}/confirm", element["confirm"])
    if kind == "button":
        check_text(errors, f"{pointer}/text", element.get("text"), limit=75, plain_only=True)
        errors.max_len(f"{pointer}/value", element.get("value"), 2000)
        errors.max_len(f"{pointer}/url", element.get("url"), 3000)
        if element.get("style") not in (None, "primary", "danger"):
            errors.add(f"{pointer}/style", "must be one of primary, danger")
    elif kind in _SELECTS_WITH_OPTIONS:
        if "option_groups" in element:
            values: list[Any] = []
            for g, group in enumerate(element.get("option_groups") or []):
                at = f"{pointer}/option_groups/{g}"
                check_text(errors, f"{at}/label", group.get("label"), limit=75, plain_only=True)
                values += _check_options(
                    errors, f"{at}/options", group.get("options"), limit=100, plain_only=True
                )
        else:
            values = _check_options(
                errors, f"{pointer}/options", element.get("options"), limit=100, plain_only=True
            )
        _check_initial_options(errors, pointer, element, values)
    elif kind in _OPTION_LISTS:
        values = _check_options(
            errors,
            f"{pointer}/options",
            element.get("options"),
            limit=_OPTION_LISTS[kind],
            plain_only=kind == "overflow",
        )
        _check_initial_options(errors, pointer, element, values)
    elif kind == "number_input":
        if not isinstance(element.get("is_decimal_allowed"), bool):
            errors.add(f"{pointer}/is_decimal_allowed", "must provide a boolean")
    elif kind not in _ELEMENTS_WITHOUT_OPTIONS:
        errors.add(f"{pointer}/type", f"invalid element type `{kind}`")
    if kind == "plain_text_input":
        for bound in ("min_length", "max_length"):
            value = element.get(bound)
            if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                errors.add(f"{pointer}/{bound}", "must be an integer between 0 and 3000")


def _check_confirm(errors: BlockErrors, pointer: str, confirm: Any) -> None:
    if not isinstance(confirm, dict):
        errors.add(pointer, "must provide an object")
        return
    check_text(errors, f"{pointer}/title", confirm.get("title"), limit=100, plain_only=True)
    check_text(errors, f"{pointer}/text", confirm.get("text"), limit=300)
    check_text(errors, f"{pointer}/confirm", confirm.get("confirm"), limit=30, plain_only=True)
    check_text(errors, f"{pointer}/deny", confirm.get("deny"), limit=30, plain_only=True)


def _check_block(errors: BlockErrors, pointer: str, block: dict[str, Any]) -> None:
    kind = block.get("type")
    action_ids: set[str] = set()
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.add(pointer, "must provide either text or fields")
        if "text" in block:
            check_text(errors, f"{pointer}/text", block["text"], limit=3000)
        fields = block.get("fields", [])
        if len(fields) > 10:
            errors.add(f"{pointer}/fields", "must provide no more than 10 items")
        for i, field in enumerate(fields):
            check_text(errors, f"{pointer}/fields/{i}", field, limit=2000)
        if "accessory" in block:
            check_element(errors, f"{pointer}/accessory", block["accessory"], action_ids)
    elif kind == "header":
        check_text(errors, f"{pointer}/text", block.get("text"), limit=150, plain_only=True)
    elif kind == "divider":
        pass
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            errors.add(f"{pointer}/elements", "must provide between 1 and 10 items")
        for i, element in enumerate(elements or []):
            if isinstance(element, dict) and element.get("type") == "image":
                continue
            check_text(errors, f"{pointer}/elements/{i}", element, limit=3000)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            errors.add(f"{pointer}/elements", "must provide between 1 and 25 items")
        for i, element in enumerate(elements or []):
            check_element(errors, f"{pointer}/elements/{i}", element, action_ids)
    elif kind == "input":
        check_text(errors, f"{pointer}/label", block.get("label"), limit=2000, plain_only=True)
        if "hint" in block:
            check_text(errors, f"{pointer}/hint", block["hint"], limit=2000, plain_only=True)
        if "element" not in block:
            errors.add(f"{pointer}/element", "must provide an object")
        else:
            check_element(errors, f"{pointer}/element", block["element"], action_ids)
    elif kind == "image":
        if "image_url" not in block and "slack_file" not in block:
            errors.add(pointer, "must provide either image_url or slack_file")
        errors.max_len(f"{pointer}/alt_text", block.get("alt_text"), 2000)
    elif kind not in _LOOSE_BLOCKS:
        errors.add(f"{pointer}/type", f"invalid block type `{kind}`")


def check_blocks(errors: BlockErrors, pointer: str, blocks: Any, *, max_blocks: int) -> None:
    if not isinstance(blocks, list):
        errors.add(pointer, "must provide an array")
        return
    if len(blocks) > max_blocks:
        errors.add(pointer, f"must provide no more than {max_blocks} items")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{pointer}/{i}"
        if not isinstance(block, dict):
            errors.add(at, "must provide an object")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            errors.max_len(f"{at}/block_id", block_id, 255)
            if block_id in block_ids:
                errors.add(f"{at}/block_id", f"duplicate block_id `{block_id}`")
            block_ids.add(block_id)
        _check_block(errors, at, block)


def message_block_errors(blocks: Any) -> list[str]:
    errors = BlockErrors()
    check_blocks(errors, "/blocks", blocks, max_blocks=MESSAGE_MAX_BLOCKS)
    return errors.messages


def view_errors(view: Any) -> list[str]:
    errors = BlockErrors()
    if not isinstance(view, dict):
        errors.add("/view", "must provide an object")
        return errors.messages
    kind = view.get("type")
    if kind not in ("modal", "home"):
        errors.add("/view/type", "must be one of modal, home")
    if kind == "modal" or "title" in view:
        check_text(errors, "/view/title", view.get("title"), limit=24, plain_only=True)
    for button in ("submit", "close"):
        if button in view:
            check_text(errors, f"/view/{button}", view[button], limit=24, plain_only=True)
    blocks = view.get("blocks")
    check_blocks(errors, "/view/blocks", blocks, max_blocks=VIEW_MAX_BLOCKS)
    has_inputs = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if kind == "modal" and has_inputs and "submit" not in view:
        errors.add("/view/submit", "must provide submit when the view has input blocks")
    errors.max_len("/view/private_metadata", view.get("private_metadata"), 3000)
    errors.max_len("/view/callback_id", view.get("callback_id"), 255)
    errors.max_len("/view/external_id", view.get("external_id"), 255)
    return errors.messages
