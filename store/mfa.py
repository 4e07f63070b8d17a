"""TOTP enrolments.

Store functions take a keyword-only ``session`` and never commit: the service owns the transaction.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from store.models import (
    MfaEnrolment,
)


def get_mfa(user_id: str, *, session: Session, for_update: bool = False) -> MfaEnrolment | None:
    stmt = select(MfaEnrolment).where(MfaEnrolment.user_id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def advance_mfa_step(*, session: Session, user_id: str, step: int) -> bool:
    """Compare-and-set the last used TOTP time step: True only for the one caller that moves it forward."""
    result = session.execute(
        update(MfaEnrolment)
        .where(
            MfaEnrolment.user_id == user_id,
            or_(MfaEnrolment.last_step.is_(None), MfaEnrolment.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def delete_enrolment(*, session: Session, user_id: str) -> bool:
    """Remove the user's enrolment (confirmed or not); False when there was none."""
    result = session.execute(
        delete(MfaEnrolment).where(MfaEnrolment.user_id == user_id).execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
