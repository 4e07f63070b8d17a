"""Encryption at rest for TOTP secrets and credentials (Fernet; several keys = rotation with MultiFernet)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    """Encrypts with the first key, decrypts with any: prepend a new key to rotate, then re-encrypt."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except ValueError:
            raise ValueError(
                "ACCESSBOT_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from None

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        return cls([k for k in value.split(",") if k.strip()])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("cannot decrypt: the encryption key does not match") from None

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()


def key_file_for_sqlite(database_url: str) -> Path:
    """The key file beside a SQLite database (``accessbot.db`` → ``accessbot.db.key``)."""
    path = database_url.split("///", 1)[-1] if "///" in database_url else "accessbot.db"
    if path in ("", ":memory:"):
        path = "accessbot.db"
    return Path(path + ".key")


def load_or_create_key(path: Path) -> str:
    """Read the key file, or create it with mode 0600."""
    if path.exists():
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
