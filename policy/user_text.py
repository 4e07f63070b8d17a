"""User text (justifications, approver reasons): checked and normalised before it is stored (SPEC §8). Pure.

What people type is shown to others, so it must never be able to pose as something else:

- NUL, other control characters and the bidirectional overrides and isolates (U+202A–U+202E,
  U+2066–U+2069, which make text read backwards on screen) are refused with a message naming the character;
- line breaks are kept (``\\r\\n`` and ``\\r`` become ``\\n``), trailing spaces dropped, and runs of blank
  lines collapsed into one, so nobody can push the buttons out of sight with a blank-line flood;
- the result is length-limited.

Shown, the text is always inert (quoted plain text): the views never render it as mrkdwn.
"""

from __future__ import annotations

import re
import unicodedata

from policy.errors import InvalidRequest

BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
ALLOWED_CONTROLS = frozenset("\n\t")
_BLANK_RUN = re.compile(r"\n{3,}")


def _refused(char: str) -> str | None:
    """Why ``char`` may not appear in user text (None = it may)."""
    if char == "\x00":
        return "a NUL character"
    if char in BIDI_CONTROLS:
        return f"an invisible text-direction character (U+{ord(char):04X})"
    if char not in ALLOWED_CONTROLS and unicodedata.category(char) == "Cc":
        return f"a control character (U+{ord(char):04X})"
    return None


def clean_user_text(text: str | None, *, field: str, what: str, limit: int) -> str:
    """``text`` normalised (see the module), or :class:`InvalidRequest` on ``field`` saying what to fix."""
    value = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    for char in value:
        problem = _refused(char)
        if problem is not None:
            raise InvalidRequest(f"The {what} contains {problem}; remove it and try again.", field=field)
    lines = [line.rstrip() for line in value.split("\n")]
    value = _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()
    if len(value) > limit:
        raise InvalidRequest(f"Keep the {what} under {limit} characters (it has {len(value)}).", field=field)
    return value
