"""Removing a user's MFA enrolment (an admin's reset: a lost phone); the caller audits it in the same transaction."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from store.models import MfaEnrolment


def delete_enrolment(session: Session, *, user_id: str) -> bool:
    """Remove the user's enrolment (confirmed or not); False when there was none."""
    result = session.execute(
        delete(MfaEnrolment).where(MfaEnrolment.user_id == user_id).execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
