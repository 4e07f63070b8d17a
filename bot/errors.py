"""The one place that turns a domain error (``policy.errors``) into what the user sees (STYLE §12).

Slack: an ephemeral or DM text, or a field error on the modal (Slack shows at most ~150 characters, cut at a word);
the CLI: a message on stderr and an exit code that says what kind of failure it was.
"""

from __future__ import annotations

from collections.abc import Collection

from policy.errors import AccessError

EXIT_OK = 0
EXIT_ERROR = 1  # the operation failed (a config that does not validate, a store or connector failure)
EXIT_USAGE = 2  # the command line was wrong (a bad id, an unknown state)
FIELD_ERROR_LIMIT = 150

def exit_code(error: AccessError) -> int:
    """A refused or failed operation (not found, not allowed, wrong state, invalid value) exits 1; a command
    line argparse or the CLI itself rejects exits 2 before any domain code runs."""
    return EXIT_ERROR


def cli_message(error: AccessError) -> str:
    return f"error: {error.message}"


def reply(error: AccessError) -> str:
    """The text of an ephemeral reply or DM."""
    return error.message


def cut_at_word(text: str, limit: int = FIELD_ERROR_LIMIT) -> str:
    """``text`` within ``limit`` characters, cut at a word boundary with an ellipsis (never mid-word)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    cut = head.rsplit(None, 1)[0] if " " in head.strip() else head
    return cut.rstrip(" ,;:.") + "…"


def field_errors(error: AccessError, fields: Collection[str], fallback: str) -> dict[str, str]:
    """A modal's ``response_action: errors`` for the error: on its own field when the modal shows it, else on
    ``fallback``."""
    field = error.field if error.field is not None and error.field in fields else fallback
    return {field: cut_at_word(error.message)}


def field_error(field: str, text: str) -> dict[str, str]:
    return {field: cut_at_word(text)}
