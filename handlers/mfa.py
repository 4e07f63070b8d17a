"""``/access mfa``: enrol a TOTP authenticator by a DM with the otpauth URI and its QR code (SPEC §6, §8).

The secret goes only to the user's own DM: the message with the key and the URI, then the QR code PNG uploaded
into the same DM (``files.getUploadURLExternal`` + upload + ``files.completeUploadExternal``; Slack's image
blocks need a public URL, an upload does not). Nothing here logs the secret, and the Slack calls that carry it
use a client whose request logging is silenced. If the upload fails, the key and the URI are enough.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.security.mfa import Enrolment
from handlers.common import Deps
from handlers.views import mfa_enrolment as view

log = logging.getLogger(__name__)

# slack_sdk logs request bodies at DEBUG; the calls carrying a secret go through a client that does not.
_quiet = logging.getLogger("accessbot.mfa.slack")
_quiet.setLevel(logging.WARNING)


def confirm(deps: Deps, user_id: str, code: str) -> str:
    if deps.mfa.verify(user_id, code):
        return "Your authenticator is confirmed; use its codes when a request asks for one."
    return "That code is not valid (or was already used). Try the next one."


def enroll(deps: Deps, client: WebClient, user_id: str, label: str) -> str:
    """Start an enrolment and DM the secret; returns the ephemeral reply (which never holds the secret)."""
    enrolment = deps.mfa.enroll(user_id, label)
    if enrolment is None:
        return "You are already enrolled. Ask an admin to reset your enrolment if you lost your device."
    quiet = WebClient(token=client.token, base_url=client.base_url, logger=_quiet)
    try:
        message = view.enrolment_message(enrolment.secret, enrolment.uri)
        posted = quiet.chat_postMessage(channel=user_id, **message)
        channel = str(posted["channel"])  # the DM's id: a user id posts into the DM with that user
    except (SlackClientError, OSError) as error:
        log.warning("could not DM the MFA enrolment to %s (%s)", user_id, type(error).__name__)
        return "I could not send you a DM with your key; try `/access mfa` again in a moment."
    _upload_qr(quiet, channel, enrolment, user_id)
    return "I sent you a DM with your key and its QR code. Scan it, then confirm with `/access mfa CODE`."


def _upload_qr(client: WebClient, channel: str, enrolment: Enrolment, user_id: str) -> None:
    try:
        client.files_upload_v2(
            channel=channel,
            content=enrolment.qr_png(),
            filename="accessbot-mfa.png",
            title="accessbot MFA QR code",
            initial_comment="Scan this QR code with your authenticator app.",
        )
    except (SlackClientError, OSError, ValueError) as error:  # the DM's key and URI still enrol
        log.warning("could not upload the MFA QR code to %s (%s)", user_id, type(error).__name__)
