"""The states of a request and of each of its grants (SPEC §5), and the one definition of each group of them.

The columns hold the values as text; these are ``StrEnum`` so a state compares equal to its text.
"""

from __future__ import annotations

from enum import StrEnum


class RequestState(StrEnum):
    PENDING = "pending"
    GRANTING = "granting"  # approved; its grants are being granted (or wait for a grantee's MFA)
    ACTIVE = "active"
    DENIED = "denied"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"
    REVOKED = "revoked"
    FAILED = "failed"


class GrantState(StrEnum):
    AWAITING_MFA = "awaiting_mfa"  # the grantee has to confirm with their own code first
    GRANTING = "granting"  # written before the connector is called
    ACTIVE = "active"
    REVOKING = "revoking"  # written before the connector is called to revoke
    REVOKE_FAILED = "revoke_failed"  # revoke attempts exhausted; still retried, slowly, and admins alerted
    EXPIRED = "expired"
    REVOKED = "revoked"
    FAILED = "failed"  # granting failed for good


# access is given, or being given: what expiry, extension and the reconciler act on
HELD = frozenset({GrantState.GRANTING, GrantState.ACTIVE})
# the connector may have given access that is not yet taken back: what overlapping grants keep
MAY_HOLD_ACCESS = HELD | {GrantState.REVOKING, GrantState.REVOKE_FAILED}
# not finished: still needs someone's eyes (App Home "active"), and keeps its request open
UNFINISHED = MAY_HOLD_ACCESS | {GrantState.AWAITING_MFA}
# a revoke is under way
ENDING = frozenset({GrantState.REVOKING, GrantState.REVOKE_FAILED})
