"""TOTP second factor (SPEC §8): enrolment, and codes that work once; secrets encrypted at rest."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import qrcode
from qrcode.image.pure import PyPNGImage

from bot.clock import Clock
from bot.security.crypto import SecretBox
from store import mfa as mfa_store
from store.db import Database
from store.models import MfaEnrolment

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str

    def __repr__(self) -> str:  # never print the secret (tracebacks, logs)
        return "Enrolment(secret=***, uri=***)"

    def qr_png(self) -> bytes:
        """The otpauth URI as a QR code PNG, for an authenticator app's camera."""
        image = qrcode.make(self.uri, image_factory=PyPNGImage, box_size=8, border=2)
        buffer = io.BytesIO()
        image.save(buffer)
        return buffer.getvalue()


class MfaService:
    def __init__(self, db: Database, clock: Clock, secrets: SecretBox, *, issuer: str = "accessbot") -> None:
        self.db = db
        self.clock = clock
        self.secrets = secrets
        self.issuer = issuer

    def enrolled(self, user_id: str) -> bool:
        with self.db.begin() as session:
            row = mfa_store.get_mfa(user_id, session=session)
            return row is not None and row.confirmed_at is not None

    def enroll(self, user_id: str, label: str) -> Enrolment | None:
        """A new secret to add to an authenticator (None when already enrolled and confirmed)."""
        now = self.clock.now()
        secret = pyotp.random_base32()
        with self.db.begin() as session:
            row = mfa_store.get_mfa(user_id, for_update=True, session=session)
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
            row = mfa_store.get_mfa(user_id, for_update=True, session=session)
            if row is None or (row.locked_until is not None and row.locked_until > now):
                return False
            totp = pyotp.TOTP(self.secrets.decrypt(row.secret_encrypted))
            step = _matching_step(totp, totp.timecode(now), code)
            # The compare-and-set moves the stored step forward for exactly one caller, whatever the isolation
            # level: a code (or an older one) never works twice, even when submitted twice at once.
            if step is not None and mfa_store.advance_mfa_step(user_id=user_id, step=step, session=session):
                row.confirmed_at = row.confirmed_at or now
                row.failed_attempts = 0
                return True
            row.failed_attempts += 1
            if row.failed_attempts >= MAX_FAILURES:
                row.locked_until, row.failed_attempts = now + LOCKOUT, 0
            return False


def _matching_step(totp: pyotp.TOTP, current: int, code: str) -> int | None:
    """The time step (this one or a neighbour, for clock drift) whose code is ``code``; the latest wins."""
    for step in (current + 1, current, current - 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
