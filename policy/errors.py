"""The domain error taxonomy. Each error carries a message the user can act on.

One place (``bot/errors.py``) maps them to Slack replies and CLI exit codes.
"""

from __future__ import annotations


class AccessError(Exception):
    """Base of every domain error; ``message`` is shown to the user as it is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the modal field the error belongs to, when there is one


class InvalidDuration(AccessError):
    pass


class InvalidRequest(AccessError):
    pass


class NotEligible(AccessError):
    pass


class NotFound(AccessError):
    pass


class AlreadyDecided(AccessError):
    pass


class InvalidState(AccessError):
    pass


class Unapprovable(AccessError):
    """Nobody could approve the request (no eligible approver exists)."""
