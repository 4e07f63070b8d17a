"""Block Kit checks the demo's Web API applies before it accepts a message or a view, with slack_sdk's models.

Slack refuses malformed blocks (``invalid_blocks`` for messages, ``invalid_arguments`` for views) and shows no
options for an options-load answer it cannot read; the demo refuses what slack_sdk's models refuse, so what the
page shows is what Slack would have accepted.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, Option, OptionGroup
from slack_sdk.models.views import View

VIEW_FIELDS = {"type", "id", "callback_id", "external_id", "team_id", "bot_id", "app_id", "root_view_id",
               "previous_view_id", "title", "submit", "close", "blocks", "private_metadata", "hash",
               "clear_on_close", "notify_on_close"}
MESSAGE_MAX_BLOCKS = 50
MAX_OPTIONS = 100  # an options load: options, or options in all groups together


class _Warnings(logging.Handler):
    """slack_sdk logs (rather than raises) an unknown block type; collect those as problems."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _parse_blocks(blocks: Any, pointer: str) -> list[str]:
    if not isinstance(blocks, list):
        return [f"must provide an array [json-pointer:{pointer}]"]
    problems: list[str] = []
    for i, raw in enumerate(blocks):
        at = f"{pointer}/{i}"
        if not isinstance(raw, dict):
            problems.append(f"must provide an object [json-pointer:{at}]")
            continue
        collector = _Warnings()
        models_log = logging.getLogger("slack_sdk.models")
        models_log.addHandler(collector)
        try:
            block = Block.parse(raw)
            if block is None or collector.messages:
                problems.append(f"invalid block type `{raw.get('type')}` [json-pointer:{at}/type]")
                continue
            block.validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
            problems.append(f"{exc} [json-pointer:{at}]")
        finally:
            models_log.removeHandler(collector)
    return problems


def message_problems(blocks: Any) -> list[str]:
    problems = _parse_blocks(blocks, "/blocks")
    if isinstance(blocks, list) and len(blocks) > MESSAGE_MAX_BLOCKS:
        problems.append(f"must provide no more than {MESSAGE_MAX_BLOCKS} items [json-pointer:/blocks]")
    return problems


def view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["must provide an object [json-pointer:/view]"]
    if view.get("type") not in ("modal", "home"):
        return ["must be one of modal, home [json-pointer:/view/type]"]
    problems = _parse_blocks(view.get("blocks"), "/view/blocks")
    if problems:
        return problems
    try:
        View(**{k: v for k, v in view.items() if k in VIEW_FIELDS}).validate_json()
    except (SlackObjectFormationError, TypeError, ValueError) as exc:
        problems.append(f"{exc} [json-pointer:/view]")
    has_inputs = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
    if view["type"] == "modal" and has_inputs and not view.get("submit"):
        problems.append("must provide submit when the view has input blocks [json-pointer:/view/submit]")
    return problems


def options_problems(answer: Any) -> list[str]:
    """What is wrong with an options-load answer: ``options`` or ``option_groups`` (not both), at most 100."""
    if not isinstance(answer, dict):
        return ["the answer must be a JSON object"]
    options, groups = answer.get("options"), answer.get("option_groups")
    if options is not None and groups is not None:
        return ["an answer has options or option_groups, not both"]
    try:
        if groups is not None:
            if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
                return ["option_groups must be an array of objects"]
            for group in OptionGroup.parse_all(groups) or []:
                group.validate_json()
            count = sum(len(g.get("options") or []) for g in groups)
        else:
            if not isinstance(options or [], list) or not all(isinstance(o, dict) for o in options or []):
                return ["options must be an array of objects"]
            for option in Option.parse_all(options or []) or []:
                option.validate_json()
            count = len(options or [])
    except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return [str(exc)]
    return [f"at most {MAX_OPTIONS} options, not {count}"] if count > MAX_OPTIONS else []
