"""The arguments of a Web API call as Slack reads them: JSON fields of form-encoded calls, required fields, flags."""

from __future__ import annotations

import json
from typing import Any

from bot.demo.workspace import SlackError

JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")


def decode_json_fields(args: dict[str, Any]) -> dict[str, Any]:
    """Form-encoded calls carry structured fields as JSON strings; decode them as Slack reads them."""
    for key in JSON_FIELDS:
        value = args.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                args[key] = json.loads(value)
            except ValueError:
                raise SlackError("invalid_arguments", messages=[f"{key} is not valid JSON"]) from None
    return args


def require(args: dict[str, Any], name: str, error: str = "invalid_arguments") -> Any:
    value = args.get(name)
    if value in (None, ""):
        raise SlackError(error, messages=[f"missing required field: {name}"])
    return value


def flag(args: dict[str, Any], name: str) -> bool:
    return args.get(name) in (True, 1, "1", "true", "True")
