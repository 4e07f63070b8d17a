"""The DM that enrols an authenticator: the key, the otpauth URI and how to confirm. Pure."""

from __future__ import annotations

from typing import Any

from handlers.views.common import context, escape, section


def enrolment_message(secret: str, uri: str) -> dict[str, Any]:
    """Sent only to the enrolling user's own DM; the QR code of ``uri`` follows as an uploaded image."""
    text = "Add accessbot to your authenticator app: scan the QR code below, or enter the key by hand."
    return {
        "text": text,
        "blocks": [
            section(text),
            section(f"*Key:* `{escape(secret, 64)}`"),
            section(f"*Or open this link on your phone:*\n{escape(uri, 500)}"),
            context("Then confirm with `/access mfa CODE`, the code your app shows. Keep this key private."),
        ],
    }
