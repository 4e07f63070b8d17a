"""TOTP second factor (SPEC §8): enrolment, and codes that work once; secrets encrypted at rest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pyotp

from bot.clock import Clock
from bot.crypto import SecretBox
from store import repository as repo
from store.db import Database
from store.models import MfaEnrolment

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str


class MfaService:
    def __init__(self, db: Database, clock: Clock, secrets: SecretBox, *, issuer: str = "accessbot") -> None:
        self.db = db
        self.clock = clock
        self.secrets = secrets
        self.issuer = issuer

    def enrolled(self, user_id: str) -> bool:
        with self.db.begin() as session:
            row = repo.get_mfa(session, user_id)
            return row is not None and row.confirmed_at is not None

    def enroll(self, user_id: str, label: str) -> Enrolment | None:
        """A new secret to add to an authenticator (None when already enrolled and confirmed)."""
        now = self.clock.now()
        secret = pyotp.random_base32()
        with self.db.begin() as session:
            row = repo.get_mfa(session, user_id, for_update=True)
            if row is not None and row.confirmed_at is not None:
                return None
            if row is None:
                row = MfaEnrolment(user_id=user_id, secret_encrypted="", created_at=now, failed_attempts=0)
                session.add(row)
            row.secret_encrypted = self.secrets.encrypt(secret)
            row.created_at, row.last_step, row.failed_attempts, row.locked_until = now, None, 0, None
        uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=self.issuer)
        return Enrolment(secret, uri)

    def verify(self, user_id: str, code: str) -> bool:
        """True once per valid code (a code, or an older one, never works twice); locks after failures."""
        now = self.clock.now()
        code = "".join(code.split())
        with self.db.begin() as session:
            row = repo.get_mfa(session, user_id, for_update=True)
            if row is None or (row.locked_until is not None and row.locked_until > now):
                return False
            totp = pyotp.TOTP(self.secrets.decrypt(row.secret_encrypted))
            current = totp.timecode(now)
            for step in (current - 1, current, current + 1):
                if (row.last_step is None or step > row.last_step) and pyotp.utils.strings_equal(
                    totp.generate_otp(step), code
                ):
                    row.last_step = step
                    row.confirmed_at = row.confirmed_at or now
                    row.failed_attempts = 0
                    return True
            row.failed_attempts += 1
            if row.failed_attempts >= MAX_FAILURES:
                row.locked_until, row.failed_attempts = now + LOCKOUT, 0
            return False
