"""The installation row: this installation's id, generated once, and the check value of its encryption key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from store.models import Installation, MfaEnrolment, OutboxMessage, conflict_insert

SINGLETON = 1


def ensure_installation(*, session: Session, now: datetime, new_id: str) -> Installation:
    """The installation row, created with ``new_id`` by the first caller; every later (or concurrent) caller,
    on any replica, gets the row that caller made."""
    session.execute(
        conflict_insert(session, Installation)
        .values(singleton=SINGLETON, installation_id=new_id, created_at=now, key_check=None)
        .on_conflict_do_nothing(index_elements=[Installation.singleton])
    )
    stmt = select(Installation).where(Installation.singleton == SINGLETON)
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def set_key_check(*, session: Session, check: str) -> bool:
    """Store the key check value unless one is stored already; True for the one caller that stored it."""
    result = session.execute(
        update(Installation)
        .where(Installation.singleton == SINGLETON, Installation.key_check.is_(None))
        .values(key_check=check)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def replace_key_check(*, session: Session, old: str, new: str) -> None:
    """Swap the check value for the same check encrypted anew (key rotation), unless it changed meanwhile."""
    session.execute(
        update(Installation)
        .where(Installation.singleton == SINGLETON, Installation.key_check == old)
        .values(key_check=new)
        .execution_options(synchronize_session=False)
    )


def encrypted_sample(*, session: Session) -> str | None:
    """One value encrypted with the database's key (an MFA secret, or credentials waiting in the outbox)."""
    secret = session.scalars(select(MfaEnrolment.secret_encrypted).where(MfaEnrolment.secret_encrypted != "")
                             .limit(1)).first()
    if secret is not None:
        return secret
    return session.scalars(select(OutboxMessage.secret).where(OutboxMessage.secret.is_not(None)).limit(1)).first()


def holds_encrypted_data(*, session: Session) -> bool:
    """Does the database hold anything only its key can read (or the check value of a key)?"""
    checked = exists().where(Installation.key_check.is_not(None))
    return bool(session.scalar(select(checked))) or encrypted_sample(session=session) is not None
